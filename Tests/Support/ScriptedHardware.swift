import MirrorCore
import Synchronization

/// A ``DuplexHardware`` without memory: each pass's harvest finds as many dirty frames as the
/// script says, so the engine's state machine and guards can be tested exactly. Every operation
/// moves ``clock`` by a fixed cost (a copied frame 1 µs, or 1/``splitSpeedup`` µs in a list of
/// ``BlackoutModel/splitFrames`` or more, a harvest 10 µs, a stop and a resume 1 µs each), so
/// that an engine given that clock measures the same costs in every run.
package final class ScriptedHardware: DuplexHardware, Sendable {
    package let backendName = "scripted"
    package let geometry: MemoryGeometry
    private let script: [Int]
    private let state = Mutex(State())
    /// Frames that verify reports as different, in or out of the blackout.
    package var differingFrames: Set<Int> { state.withLock { $0.differing } }

    package struct State: Sendable {
        package var pass = 0
        package var pendingDirty = 0
        package var tracking = false
        package var inBlackout = false
        package var lockstep = false
        package var blackouts = 0
        /// Frame-list copies made in the current blackout.
        package var copiesInBlackout = 0
        package var calls: [String] = []
        /// Frame-list verifies made with the CPUs stopped.
        package var verifiesInBlackout = 0
        /// Frames that verify reports as different.
        package var differing: Set<Int> = []
        /// Whether the machine's threads run (for a service's start and shutdown).
        package var started = false
    }

    /// Make `enterBlackout` fail from its `n`-th call on (1: the first), to test the clean-up.
    package let failBlackoutFrom: Int?

    /// `dirtyPerPass[i]` frames are dirty at harvest i (0: the dirtying during the full copy);
    /// past the end of the script the last figure repeats.
    /// The clock the operations move.
    package let clock = ScriptedClock()
    /// What a copied frame costs on ``clock``, in nanoseconds.
    package let copyNanosecondsPerFrame: UInt64 = 1_000
    /// What a copy of a frame list costs besides its frames: a short list costs more a frame
    /// than a long one.
    package let copyCallNanoseconds: UInt64
    /// What a harvest costs.
    package let harvestNanoseconds: UInt64 = 10_000
    /// What a stop, and a resume, cost.
    package let stopNanoseconds: UInt64
    /// Frames every stop finds dirtied since the last count: CPUs that kept writing until they
    /// were stopped.
    package let dirtiedDuringStop: Int
    /// How much faster a list of ``BlackoutModel/splitFrames`` frames or more is copied (by two
    /// threads) than one frame at a time; twice by default, less where the second thread starts late.
    package let splitSpeedup: Double
    /// From this blackout on (1: the first) a stop and a resume cost 1 µs whatever
    /// `stopNanoseconds` says: a host that was busy and is no longer.
    package let fastStopsFrom: Int?
    /// Nanoseconds the engine's thread spends off its CPU in each copy of a frame list made in a
    /// blackout: a host that takes the core in the middle of the copy.
    package let descheduledInBlackoutCopy: UInt64
    /// Nanoseconds each copy of a frame list made in a blackout waits for a copying thread of the
    /// hardware's own that the host took off its CPU (the engine's thread spins meanwhile).
    package let helperDescheduledInBlackoutCopy: UInt64
    /// Nanoseconds the engine's thread spends off its CPU in the first copy of a frame list in
    /// each blackout (a look's sample) and in no other: a split copy goes on at one thread's pace
    /// meanwhile (``splitSpeedup``), a one-thread copy waits.
    package let descheduledInSample: UInt64
    private let helperOffCPU = Atomic<UInt64>(0)

    package init(
        frameCount: Int = 200_000, dirtyPerPass: [Int], differingFrames: Set<Int> = [], failBlackoutFrom: Int? = nil,
        stopNanoseconds: UInt64 = 1_000, fastStopsFrom: Int? = nil, splitSpeedup: Double = 2,
        dirtiedDuringStop: Int = 0,
        descheduledInBlackoutCopy: UInt64 = 0, helperDescheduledInBlackoutCopy: UInt64 = 0,
        copyCallNanoseconds: UInt64 = 0,
        descheduledInSample: UInt64 = 0
    ) {
        self.descheduledInSample = descheduledInSample
        self.copyCallNanoseconds = copyCallNanoseconds
        self.descheduledInBlackoutCopy = descheduledInBlackoutCopy
        self.helperDescheduledInBlackoutCopy = helperDescheduledInBlackoutCopy
        self.dirtiedDuringStop = dirtiedDuringStop
        self.failBlackoutFrom = failBlackoutFrom
        self.splitSpeedup = splitSpeedup
        self.stopNanoseconds = stopNanoseconds
        self.fastStopsFrom = fastStopsFrom
        geometry = MemoryGeometry(frameSize: 4096, frameCount: frameCount)
        script = dirtyPerPass
        state.withLock { $0.differing = differingFrames }
    }

    package var snapshot: State { state.withLock { $0 } }

    /// Makes verify report `frames` as different from now on (a fault after the duplex).
    package func setDifferingFrames(_ frames: Set<Int>) { state.withLock { $0.differing = frames } }

    /// Marks the machine started (a service starts it before the duplex).
    package func start() { state.withLock { $0.started = true } }

    /// Marks the machine shut down.
    package func shutdown() { state.withLock { $0.started = false } }

    package func startTracking() throws(HardwareError) {
        state.withLock {
            $0.tracking = true
            $0.pendingDirty = script.first ?? 0
            $0.calls.append("startTracking")
        }
    }

    package func stopTracking() {
        state.withLock {
            $0.tracking = false
            $0.calls.append("stopTracking")
        }
    }

    package var dirtyFrameCount: Int { state.withLock { $0.pendingDirty } }

    package func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError)
        -> HarvestResult
    {
        try flags.validate()
        clock.advance(by: harvestNanoseconds)
        return state.withLock { s in
            let n = min(s.pendingDirty, output.count)
            // Scattered frames, none adjacent, as a busy workload leaves them.
            for i in 0..<n { output[i] = UInt32(frames.lowerBound + 2 * i) }
            guard flags.contains(.clear) else {
                return HarvestResult(
                    reported: n, cleared: 0, scanEnd: n == output.count ? frames.lowerBound + n : frames.upperBound)
            }
            s.pendingDirty -= n
            if s.pendingDirty == 0 && !s.inBlackout {
                // This pass's copy is done: the workload dirties the next pass's figure meanwhile.
                s.pass += 1
                s.pendingDirty = script[min(s.pass, script.count - 1)]
            }
            return HarvestResult(
                reported: n, cleared: n, scanEnd: n == output.count ? frames.lowerBound + n : frames.upperBound)
        }
    }

    package func copyToSpare(frames: Range<Int>) {
        clock.advance(by: UInt64(frames.count) * copyNanosecondsPerFrame / 8)
    }
    /// A list of ``BlackoutModel/splitFrames`` frames or more is copied by two threads,
    /// ``splitSpeedup`` times as fast (as the emulation's is).
    package func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        let nanoseconds = Double(UInt64(frameList.count) * copyNanosecondsPerFrame)
        let split = frameList.count >= BlackoutModel.splitFrames
        clock.advance(by: UInt64(split ? nanoseconds / splitSpeedup : nanoseconds) + copyCallNanoseconds)
        let (inBlackout, first) = state.withLock { s -> (Bool, Bool) in
            guard s.inBlackout else { return (false, false) }
            s.copiesInBlackout += 1
            return (true, s.copiesInBlackout == 1)
        }
        if first && descheduledInSample > 0 {
            clock.deschedule(
                for: descheduledInSample,
                lost: split ? UInt64(Double(descheduledInSample) * (1 - 1 / splitSpeedup)) : descheduledInSample)
        }
        if inBlackout {
            clock.deschedule(for: descheduledInBlackoutCopy)
            clock.advance(by: helperDescheduledInBlackoutCopy)
            helperOffCPU.add(helperDescheduledInBlackoutCopy, ordering: .relaxed)
        }
    }

    package var copyThreadsOffCPUNanoseconds: UInt64 { helperOffCPU.load(ordering: .relaxed) }

    package func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        differ(Array(frames), into: mismatches)
    }

    package func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>)
        -> VerifyResult
    {
        state.withLock { if $0.inBlackout { $0.verifiesInBlackout += 1 } }
        return differ(frameList.map { Int($0) }, into: mismatches)
    }

    private func differ(_ frames: [Int], into output: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        var result = VerifyResult(checked: frames.count)
        let differing = differingFrames
        for f in frames where differing.contains(f) {
            result.mismatches += 1
            if result.reported < output.count {
                output[result.reported] = UInt32(f)
                result.reported += 1
            }
        }
        return result
    }

    package func enterBlackout() throws(HardwareError) -> UInt64 {
        let refused = state.withLock { s -> Bool in
            if let first = failBlackoutFrom, s.blackouts + 1 >= first { return true }
            s.inBlackout = true
            s.blackouts += 1
            s.copiesInBlackout = 0
            if s.tracking { s.pendingDirty += dirtiedDuringStop }
            s.calls.append("enterBlackout")
            return false
        }
        if refused { throw HardwareError(.blackout, operation: "enter blackout", message: "scripted failure") }
        let stop = currentStopNanoseconds
        clock.advance(by: stop)
        return stop
    }

    /// What the stop (and the resume) of the current or last blackout costs.
    private var currentStopNanoseconds: UInt64 {
        let blackouts = state.withLock { $0.blackouts }
        if let fast = fastStopsFrom, blackouts >= fast { return 1_000 }
        return stopNanoseconds
    }

    package func leaveBlackout() {
        clock.advance(by: currentStopNanoseconds)
        state.withLock {
            $0.inBlackout = false
            $0.calls.append("leaveBlackout")
        }
    }
    package func setDMADualWrite(_ enabled: Bool) { state.withLock { $0.calls.append("dualWrite(\(enabled))") } }
    package func setLockstep(_ enabled: Bool) {
        state.withLock {
            $0.lockstep = enabled
            $0.calls.append("lockstep(\(enabled))")
        }
    }
}
