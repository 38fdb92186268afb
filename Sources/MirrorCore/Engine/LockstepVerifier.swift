/// Compares frames of the spare with the active module while the machine runs in lockstep, and
/// tells real differences from stores in flight.
///
/// In lockstep a store reaches the active module a moment before the spare, so a frame may
/// differ for that moment. A differing frame is compared again at once; one that still differs is
/// compared a third time inside a short blackout, with nothing running, and only then counts. The
/// blackout lasts as long as those few frames take, whatever the size of memory.
struct LockstepVerifier: ~Copyable {
    /// How many differing frames one sweep lists for a second look.
    static let candidateCapacity = 4096

    private let hardware: any DuplexHardware
    private let candidates: UnsafeMutableBufferPointer<UInt32>

    init(hardware: any DuplexHardware) {
        self.hardware = hardware
        candidates = .allocate(capacity: Self.candidateCapacity)
    }

    deinit { candidates.deallocate() }

    /// Verifies `frames` in chunks of `chunkFrames`. `beforeChunk` may throw to abandon the
    /// verify (a stop request); `afterChunk` is told how far it got. The frames a chunk finds
    /// different get their second look (and, if still different, their confirmation) right after
    /// that chunk, while whatever made them differ is still there. A sweep with more differing
    /// frames than the list holds is repeated, so that every differing frame gets its second look;
    /// after three such sweeps the unlisted ones count as differing too.
    func verify(
        _ frames: Range<Int>, chunkFrames: Int,
        beforeChunk: () throws -> Void, afterChunk: (Int) -> Void
    ) throws -> DuplexSummary.Verify {
        let start = MonotonicClock.nanoseconds()
        var record = DuplexSummary.Verify()
        var confirmed: [Int] = []
        for sweep in 1...3 {
            var unlisted = 0
            record.framesChecked = 0
            var frame = frames.lowerBound
            while frame < frames.upperBound {
                try beforeChunk()
                let end = min(frame + chunkFrames, frames.upperBound)
                let result = hardware.verify(frames: frame..<end, mismatches: candidates)
                record.framesChecked += result.checked
                record.candidates += result.mismatches
                unlisted += result.mismatches - result.reported
                if result.reported > 0 {
                    let (found, micros) = try confirm(result.reported)
                    confirmed += found
                    record.confirmMicroseconds += micros
                }
                frame = end
                afterChunk(frame)
            }
            if !confirmed.isEmpty || unlisted == 0 || sweep == 3 {
                record.mismatches = confirmed.count + unlisted
                break
            }
        }
        confirmed.sort()
        record.firstMismatches = Array(confirmed.prefix(DuplexEngine.reportedMismatches))
        record.durationMicroseconds = MonotonicClock.microseconds(since: start)
        return record
    }

    /// Looks again at the first `count` listed frames; confirms those still differing in a
    /// blackout. Returns the confirmed frames and how long the confirming blackout lasted. A
    /// blackout that cannot be entered is an error: a comparison with the CPUs running confirms
    /// nothing.
    private func confirm(_ count: Int) throws(HardwareError) -> (frames: [Int], microseconds: UInt64) {
        let list = UnsafeBufferPointer(rebasing: candidates[0..<count])
        let again = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: count)
        defer { again.deallocate() }
        let second = hardware.verify(frameList: list, mismatches: again)
        guard second.mismatches > 0 else { return ([], 0) }
        let start = MonotonicClock.nanoseconds()
        _ = try hardware.enterBlackout()
        let third = hardware.verify(
            frameList: UnsafeBufferPointer(rebasing: again[0..<second.reported]), mismatches: candidates)
        hardware.leaveBlackout()
        return (candidates[0..<third.reported].map { Int($0) }, MonotonicClock.microseconds(since: start))
    }
}
