import MirrorCore
import Testing

@testable import MirrordService

@Suite("STATUS= texts")
struct StatusTextTests {
    let geometry = MemoryGeometry(frameSize: 4096, frameCount: 262_144)

    @Test("each state and pass has its one line; events that change nothing give none")
    func perEvent() {
        func text(_ event: DuplexEvent) -> String? { StatusText.forEvent(event, geometry: geometry) }
        #expect(text(.stateChanged(from: .idle, to: .tracking)) == "dirty tracking on")
        #expect(text(.stateChanged(from: .tracking, to: .fullCopy)) == "full copy of 262144 frames (1GiB)")
        #expect(text(.stateChanged(from: .blackout, to: .verify)) == "verify: comparing 262144 frames in lockstep")
        #expect(text(.stateChanged(from: .fullCopy, to: .passes)) == nil)
        #expect(text(.progress(.fullCopy, completedFrames: 1, totalFrames: 2)) == nil)
        #expect(
            text(.fullCopyCompleted(.init(durationMicroseconds: 114_700, bytes: 1 << 30)))
                == "full copy done in 114 ms; pass 1 next")
        let pass = DuplexSummary.Pass(
            pass: 4, dirtyFrames: 1830, copiedFrames: 1830, durationMicroseconds: 900,
            dirtyRateFramesPerSecond: 0, remainingDirtyFrames: 500)
        #expect(
            text(.passCompleted(pass, thresholdFrames: 1024, targetMicroseconds: 0))
                == "pass 4: 1830 dirty frames (0.7%), threshold 1024")
        let predicted = DuplexSummary.Pass(
            pass: 5, dirtyFrames: 900, copiedFrames: 900, durationMicroseconds: 500,
            dirtyRateFramesPerSecond: 123_456, remainingDirtyFrames: 800,
            predictedBlackoutMicroseconds: 850, cpuThrottlePercent: [90, 0])
        #expect(
            text(.passCompleted(predicted, thresholdFrames: 64, targetMicroseconds: 1000))
                == "pass 5: 900 dirty frames (0.3%), threshold 64; dirtied at 123.5k frames/s; blackout 850 µs predicted, target 1000 µs; throttle 90%/0%"
        )
        #expect(StatusText.rateText(850.4) == "850" && StatusText.rateText(4_120_000) == "4.1M")
        #expect(text(.throttleChanged(cpuPercent: [20, 20], engaged: true, reason: "")) == nil)
        #expect(
            text(.passesEnded(.stalled, dirtyFrames: 3000, predictedBlackoutMicroseconds: nil))
                == "blackout: final copy of 3000 frames (passes ended: stalled)")
        #expect(
            text(.passesEnded(.target, dirtyFrames: 800, predictedBlackoutMicroseconds: 850))
                == "blackout: final copy of 800 frames (passes ended: target, 850 µs predicted)")
    }

    @Test("a finished duplex says duplexed, stopped or failed")
    func summaries() {
        var summary = DuplexSummary(backend: "emulated", geometry: geometry, thresholdFrames: 1024)
        summary.outcome = .duplexed(.threshold)
        summary.finalState = .duplexed
        summary.verify = .init(framesChecked: 262_144)
        summary.blackout = .init(
            durationMicroseconds: 612, stopMicroseconds: 3, finalFrames: 700, finalCopyMicroseconds: 500,
            verifyMicroseconds: 0)
        #expect(StatusText.summaryLine(summary) == "duplexed; verified 262144 frames, blackout 612 µs")
        summary.outcome = .failed(.stopped)
        summary.failedIn = .passes
        #expect(StatusText.summaryLine(summary) == "stopped in state passes")
        summary.outcome = .failed(.verifyMismatch)
        summary.message = "verify failed in lockstep: 2 frames differ between active and spare (first: 7, 9)"
        #expect(
            StatusText.summaryLine(summary)
                == "failed: verify failed in lockstep: 2 frames differ between active and spare (first: 7, 9)")
    }
}
