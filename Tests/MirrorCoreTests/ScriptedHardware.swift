import MirrorCore
import Synchronization

/// A ``DuplexHardware`` without memory: each pass's harvest finds as many dirty frames as the
/// script says, so the engine's state machine and guards can be tested exactly.
final class ScriptedHardware: DuplexHardware, Sendable {
    let backendName = "scripted"
    let geometry: MemoryGeometry
    private let script: [Int]
    private let state = Mutex(State())
    /// Frames that verify reports as different, in or out of the blackout.
    let differingFrames: Set<Int>

    struct State {
        var pass = 0
        var pendingDirty = 0
        var tracking = false
        var inBlackout = false
        var lockstep = false
        var blackouts = 0
        var calls: [String] = []
        /// Frame-list verifies made with the CPUs stopped.
        var verifiesInBlackout = 0
    }

    /// Make `enterBlackout` fail from its `n`-th call on (1: the first), to test the clean-up.
    let failBlackoutFrom: Int?

    /// `dirtyPerPass[i]` frames are dirty at harvest i (0: the dirtying during the full copy);
    /// past the end of the script the last figure repeats.
    init(frameCount: Int = 100_000, dirtyPerPass: [Int], differingFrames: Set<Int> = [], failBlackoutFrom: Int? = nil) {
        self.failBlackoutFrom = failBlackoutFrom
        geometry = MemoryGeometry(frameSize: 4096, frameCount: frameCount)
        script = dirtyPerPass
        self.differingFrames = differingFrames
    }

    var snapshot: State { state.withLock { $0 } }

    func startTracking() throws(HardwareError) {
        state.withLock { $0.tracking = true; $0.pendingDirty = script.first ?? 0; $0.calls.append("startTracking") }
    }

    func stopTracking() { state.withLock { $0.tracking = false; $0.calls.append("stopTracking") } }

    var dirtyFrameCount: Int { state.withLock { $0.pendingDirty } }

    func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>) throws(HarvestError)
        -> HarvestResult
    {
        try flags.validate()
        return state.withLock { s in
            let n = min(s.pendingDirty, output.count)
            for i in 0..<n { output[i] = UInt32(frames.lowerBound + i) }
            s.pendingDirty -= n
            if s.pendingDirty == 0 && !s.inBlackout {
                // This pass's copy is done: the workload dirties the next pass's figure meanwhile.
                s.pass += 1
                s.pendingDirty = script[min(s.pass, script.count - 1)]
            }
            return HarvestResult(reported: n, cleared: n, scanEnd: n == output.count ? frames.lowerBound + n : frames.upperBound)
        }
    }

    func copyToSpare(frames: Range<Int>) {}
    func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {}

    func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        differ(Array(frames), into: mismatches)
    }

    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        state.withLock { if $0.inBlackout { $0.verifiesInBlackout += 1 } }
        return differ(frameList.map { Int($0) }, into: mismatches)
    }

    private func differ(_ frames: [Int], into output: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        var result = VerifyResult(checked: frames.count)
        for f in frames where differingFrames.contains(f) {
            result.mismatches += 1
            if result.reported < output.count {
                output[result.reported] = UInt32(f)
                result.reported += 1
            }
        }
        return result
    }

    func enterBlackout() throws(HardwareError) -> UInt64 {
        let refused = state.withLock { s -> Bool in
            if let first = failBlackoutFrom, s.blackouts + 1 >= first { return true }
            s.inBlackout = true
            s.blackouts += 1
            s.calls.append("enterBlackout")
            return false
        }
        if refused { throw HardwareError(operation: "enter blackout", message: "scripted failure") }
        return 1_000
    }

    func leaveBlackout() { state.withLock { $0.inBlackout = false; $0.calls.append("leaveBlackout") } }
    func setDMADualWrite(_ enabled: Bool) { state.withLock { $0.calls.append("dualWrite(\(enabled))") } }
    func setLockstep(_ enabled: Bool) { state.withLock { $0.lockstep = enabled; $0.calls.append("lockstep(\(enabled))") } }
}
