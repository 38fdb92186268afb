import MirrorCore
import Testing

@testable import MirrorBench

/// The remote section's epochs of a running machine: nearest-rank percentiles, the commit lag in
/// epochs, the workload's slowdown and the pause's parts, held to known figures.
@Suite("Bench results: epochs of a running machine")
struct ReplicationResultTests {
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)) }

    /// An epoch staged inside its pause, or, `copyOnWrite`, after its resume.
    static func report(
        epoch: UInt64, frames: Int, pause: UInt64, stop: UInt64, stage: UInt64, lag: UInt64, copyOnWrite: Bool = false
    ) -> EpochReport {
        EpochReport(
            epoch: epoch, frames: frames, pauseMicroseconds: pause, stopMicroseconds: stop, stageMicroseconds: stage,
            commitMicroseconds: lag / 2, lagMicroseconds: lag, epochsBehind: 0, linkBytesPerSecond: 0,
            framesReadBack: 0, framesCopiedInPause: copyOnWrite ? 0 : frames)
    }

    /// Nearest rank: the smallest value with at least p % of the sample at or below it.
    @Test("percentiles by nearest rank, whatever the order; 0 for an empty sample")
    func percentiles() {
        let hundred = Array((1...100).reversed()).map(UInt64.init)
        #expect(Percentile.of(hundred, 50) == 50)
        #expect(Percentile.of(hundred, 99) == 99)
        #expect(Percentile.of(hundred, 100) == 100)
        #expect(Percentile.of([7, 3, 5] as [Int], 50) == 5)
        #expect(Percentile.of([7, 3, 5] as [Int], 99) == 7)
        #expect(Percentile.of([4] as [Int], 1) == 4)
        #expect(Percentile.of([] as [UInt64], 99) == 0)
        #expect(close(Percentile.of([0.5, 2.5, 1.5], 50), 1.5))
    }

    /// Lag over `remote.epoch`; slowdown 1 − during ÷ before; the pause beyond stop and stage.
    @Test("lag in epochs, the workload's slowdown, the pause's parts")
    func figures() {
        let reports = (0..<100).map { i in
            Self.report(
                epoch: UInt64(i + 2), frames: 100 + i, pause: UInt64(200 + i), stop: 50, stage: 100,
                lag: UInt64(10_000 + 100 * i))
        }
        let result = ReplicationResult(
            applier: "standby", standby: nil, memoryBytes: 1 << 30, cpus: 2, workloadRate: "32MiB/s",
            epochMicroseconds: 10_000, stagingBytes: 256 << 20,
            targetMicroseconds: 250, syncMicroseconds: 1_000_000, syncPasses: 3, fullCopyGBps: 2, syncEnd: "threshold",
            syncBlackoutMicroseconds: 900, syncFinalFrames: 10, syncMaxThrottlePercent: 0, syncPassList: [],
            firstEpoch: Self.report(epoch: 1, frames: 10, pause: 100, stop: 10, stage: 20, lag: 500),
            windowMicroseconds: 2_000_000, reports: reports,
            rows: reports.map {
                ReplicationResult.Row(
                    report: $0,
                    thread: .init(faults: 2, involuntarySwitches: 1, runDelayNanoseconds: 3_000))
            }, lastCommittedEpoch: 102, throttleChanges: 0,
            maxThrottlePercent: 0, baselineStoresPerSecond: 40e6, replicatingStoresPerSecond: 30e6, cpu: nil,
            takeover: nil,
            memcpyGBps: 8, nbdcopyMBps: 1_000)
        #expect(result.epochs == 100)
        #expect(close(result.epochsPerSecond, 50))
        #expect(result.pauseP50 == 249 && result.pauseP99 == 298 && result.pauseMax == 299)
        #expect(result.overTarget == 49)
        #expect(close(result.lagP50, 1.49) && close(result.lagP99, 1.98))
        #expect(result.framesP50 == 149 && result.framesP99 == 198)
        #expect(close(result.slowdown, 0.25))
        #expect(close(ReplicationResult.slowdown(baseline: 0, during: 5), 0))
        #expect(result.restP50 == 99)
        // The slowest tenth: pauses 290 to 299 µs (p90 is 289 by nearest rank: 289 and up, 11 of them).
        #expect(result.tailRows.count == 11)
        #expect(result.tailPauseMicroseconds == (289...299).reduce(0, +))
        #expect(result.tailStageMicroseconds == 1_100 && result.tailRunDelayMicroseconds == 33)
        #expect(result.tailFaults == 22 && result.tailFrames == (189...199).reduce(0, +))
        #expect(ReplicationResult.rest(Self.report(epoch: 2, frames: 1, pause: 10, stop: 8, stage: 5, lag: 1)) == 0)
        // A copy after the resume is no part of the pause.
        let copyOnWrite = Self.report(epoch: 2, frames: 1, pause: 10, stop: 8, stage: 5, lag: 1, copyOnWrite: true)
        #expect(ReplicationResult.rest(copyOnWrite) == 2 && ReplicationResult.stageInPause(copyOnWrite) == 0)
        #expect(close(result.syncCopyRatio, 0.25))
        // 14,950 frames of 4 KiB staged in 100 × 100 µs.
        #expect(close(result.stageGBps, Double(14_950 * 4096) / 10_000 / 1_000))
        // The stage copy's share of all pause time (200 to 299 µs), a frame's stage copy, the run delay.
        #expect(close(result.stageShare, 10_000 / 24_950))
        #expect(close(result.stageMicrosecondsPerFrame, 10_000 / 14_950))
        #expect(result.runDelayP50 == 3 && result.runDelayP99 == 3)
        // The link in commits (14,950 frames in commits of 5,000 + 50 i µs) against nbdcopy's 1,000 MB/s.
        #expect(close(result.linkRatio, Double(14_950 * 4096) / 747_500 / 1_000))
    }

    /// The takeover to CPUs running: recovery, the machine on the image, its start; the touch of
    /// every page only for comparison.
    @Test("the takeover is recover + machine + start; the touch of every page is apart")
    func takeover() {
        let t = ReplicationResult.Takeover(
            epoch: 9, framesReplayed: 300, recoverMicroseconds: 4_000, makeMachineMicroseconds: 2_000,
            startMicroseconds: 500, firstStoreMicroseconds: 6_700, mapMicroseconds: 250_000, mmapMicroseconds: 20,
            populateMicroseconds: 200_000, cleanStopFramesReplayed: 0, cleanStopRecoverMicroseconds: 100)
        #expect(t.totalMicroseconds == 6_500)
        #expect(t.touchTotalMicroseconds == 254_000)
    }
}
