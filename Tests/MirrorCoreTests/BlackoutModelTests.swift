import MirrorCore
import Testing

/// The blackout model's arithmetic: which measured copy predicts which list.
@Suite("Blackout model")
struct BlackoutModelTests {
    /// Equal but for the last bits of a `Double`.
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(abs(a), abs(b)) }

    @Test("a sample is copied before the decision, of the kind the rest of the list is copied as")
    func sampling() {
        #expect(BlackoutModel.splitFrames == 256 && BlackoutModel.longSampleFrames == 512)
        #expect(BlackoutModel.sampling(dirty: 0) == (0, false))
        #expect(BlackoutModel.sampling(dirty: 12) == (12, true), "a short list is copied whole first")
        #expect(BlackoutModel.sampling(dirty: 40) == (40, true))
        #expect(BlackoutModel.sampling(dirty: 100) == (50, true))
        #expect(BlackoutModel.sampling(dirty: 510) == (255, true), "both halves on one thread")
        #expect(BlackoutModel.sampling(dirty: 512) == (256, true), "both halves split")
        #expect(BlackoutModel.sampling(dirty: 1_023) == (511, true))
        #expect(BlackoutModel.sampling(dirty: 1_024) == (BlackoutModel.longSampleFrames, true))
        #expect(BlackoutModel.sampling(dirty: 40_000) == (BlackoutModel.longSampleFrames, true))
    }

    @Test("a sample has exactly the frames asked for, in sixteen pieces from the list's first frame to its last")
    func sampleTaken() {
        let list = (0..<500).map { UInt32($0 * 2) }
        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 4_096)
        defer { output.deallocate() }
        list.withUnsafeBufferPointer { list in
            for frames in [32, 100, 250, 255] {
                let taken = BlackoutModel.takeSample(of: list, frames: frames, into: output)
                let sample = Array(output[0..<taken])
                #expect(taken == frames, "\(frames) asked for")
                #expect(zip(sample, sample.dropFirst()).allSatisfy { $0 < $1 } && Set(sample).isSubset(of: Set(list)))
                // The first piece starts the list; the last starts where the longest piece would end it.
                #expect(
                    sample.first == 0 && sample.last! >= list[list.count - (frames + 15) / 16],
                    "spread over the whole list")
            }
            #expect(
                BlackoutModel.takeSample(of: list, frames: 900, into: output) == 500, "the whole list, when no longer")
            #expect(
                BlackoutModel.takeSample(
                    of: list, frames: 250, into: UnsafeMutableBufferPointer(rebasing: output[0..<64])) == 64)
        }
    }

    @Test("a blackout that goes on whatever the prediction samples an eighth of a long list, within the limit")
    func endingSample() {
        #expect(
            BlackoutModel.sampling(dirty: 2_000, ending: true, limit: 4_096) == (BlackoutModel.longSampleFrames, true))
        #expect(BlackoutModel.sampling(dirty: 16_000, ending: true, limit: 4_096) == (2_000, true))
        #expect(BlackoutModel.sampling(dirty: 60_000, ending: true, limit: 4_096) == (4_096, true))
        #expect(
            BlackoutModel.sampling(dirty: 60_000, ending: false, limit: 4_096) == (BlackoutModel.longSampleFrames, true)
        )
        #expect(
            BlackoutModel.sampling(dirty: 700, ending: true, limit: 4_096) == (350, true),
            "a shorter list: half of it, as always")
    }

    @Test("each kind of sample predicts the copies of its own kind")
    func ownKind() {
        var model = BlackoutModel()
        model.recordLook(stop: 1_000, harvest: 10_000)
        model.recordSample(frames: 200, nanoseconds: 200_000)  // one thread: 1 µs a frame
        model.recordSample(frames: 512, nanoseconds: 409_600)  // split: 0.8 µs a frame
        #expect(model.copyNanoseconds(frames: 255) == 255_000)
        #expect(model.copyNanoseconds(frames: 256) == 204_800)
        #expect(model.copyNanoseconds(frames: 1_000) == 800_000)
        #expect(model.predict(frames: 1_000) == 811_000)
    }

    @Test("the last sample of a kind is the one that counts")
    func lastSample() {
        var model = BlackoutModel()
        model.recordLook(stop: 1_000, harvest: 10_000)
        model.recordSample(frames: 512, nanoseconds: 614_400)  // 1.2 µs a frame
        model.recordSample(frames: 512, nanoseconds: 409_600)  // 0.8 µs: the one just taken
        #expect(model.copyNanoseconds(frames: 2_000) == 1_600_000)
    }

    @Test("a kind not measured yet is derived from the other")
    func derived() {
        var oneThread = BlackoutModel()
        oneThread.recordLook(stop: 1_000, harvest: 10_000)
        oneThread.recordSample(frames: 200, nanoseconds: 200_000)
        #expect(close(oneThread.copyNanoseconds(frames: 900), 900_000 / BlackoutModel.splitSpeedup))

        var split = BlackoutModel()
        split.recordLook(stop: 1_000, harvest: 10_000)
        split.recordSample(frames: 512, nanoseconds: 409_600)
        #expect(close(split.copyNanoseconds(frames: 100), 80_000 * BlackoutModel.splitSpeedup))
    }

    @Test("before any sample the passes' copies serve, and samples too small are not taken")
    func passesServe() {
        var model = BlackoutModel()
        #expect(!model.isCalibrated)
        model.recordLook(stop: 1_000, harvest: 10_000)
        model.recordCopy(frames: 2_000, nanoseconds: 1_000_000)  // split: 0.5 µs a frame
        model.recordSample(frames: 16, nanoseconds: 1_000_000)
        #expect(model.isCalibrated)
        #expect(model.copyNanoseconds(frames: 1_000) == 500_000)
        #expect(close(model.copyNanoseconds(frames: 10), 5_000 * BlackoutModel.splitSpeedup))
    }
}
