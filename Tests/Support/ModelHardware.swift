import MirrorCore
import Synchronization

/// A ``DuplexHardware`` whose CPUs are a model, not threads: each CPU stores and dirties frames at
/// a fixed rate, slowed by the throttle the engine sets, on a ``ScriptedClock`` that the
/// operations move (a copied frame 1 µs, a harvest 10 µs, a stop and a resume `stopNanoseconds`
/// each). The dirty set grows with the model time that passes, so the engine's convergence control
/// (what it throttles, how the passes end, what it cost the workload) can be checked exactly.
package final class ModelHardware: DuplexHardware {
    /// One modelled CPU at full pace.
    package struct CPU: Sendable {
        /// Stores a second.
        package var storesPerSecond: Double
        /// Frames a second it turns from clean to dirty.
        package var dirtyFramesPerSecond: Double
        /// Frames a second dirtied on its behalf that its counter does not see (copies the
        /// kernel makes for it, say): more frames dirty than its rate says.
        package var uncountedDirtyFramesPerSecond: Double

        package init(storesPerSecond: Double, dirtyFramesPerSecond: Double, uncountedDirtyFramesPerSecond: Double = 0) {
            self.storesPerSecond = storesPerSecond
            self.dirtyFramesPerSecond = dirtyFramesPerSecond
            self.uncountedDirtyFramesPerSecond = uncountedDirtyFramesPerSecond
        }
    }

    /// What the engine did to the model.
    package struct State: Sendable {
        package var dirty = 0.0
        package var stores: [Double]
        package var dirtied: [Double]
        package var throttle: [Double]
        /// Every throttle the engine set, in order: (cpu, fraction).
        package var throttleHistory: [(cpu: Int, fraction: Double)] = []
        package var inBlackout = false
        package var lockstep = false
        package var tracking = false
        var lastAccrual: UInt64 = 0
    }

    package let backendName = "model"
    package let geometry: MemoryGeometry
    package let clock = ScriptedClock()
    package let cpus: [CPU]
    /// Whether the backend counts frames per CPU (the emulation does; a real MMU does not).
    package let countsDirtyFramesPerCPU: Bool
    private let stopNanoseconds: UInt64
    private let state: Mutex<State>

    package init(
        frameCount: Int = 262_144, cpus: [CPU], countsDirtyFramesPerCPU: Bool = true, stopNanoseconds: UInt64 = 1_000
    ) {
        geometry = MemoryGeometry(frameSize: 4096, frameCount: frameCount)
        self.cpus = cpus
        self.countsDirtyFramesPerCPU = countsDirtyFramesPerCPU
        self.stopNanoseconds = stopNanoseconds
        state = Mutex(
            State(
                stores: Array(repeating: 0, count: cpus.count), dirtied: Array(repeating: 0, count: cpus.count),
                throttle: Array(repeating: 0, count: cpus.count)))
        let start = clock.nanoseconds()
        state.withLock { $0.lastAccrual = start }
    }

    package var snapshot: State {
        state.withLock { s in
            accrue(&s)
            return s
        }
    }

    /// The model time since the last accrual, at each CPU's throttled pace.
    private func accrue(_ s: inout State) {
        let now = clock.nanoseconds()
        defer { s.lastAccrual = now }
        guard !s.inBlackout else { return }
        let seconds = Double(now &- s.lastAccrual) / 1e9
        for (i, cpu) in cpus.enumerated() {
            let pace = 1 - s.throttle[i]
            s.stores[i] += cpu.storesPerSecond * pace * seconds
            let dirtied = cpu.dirtyFramesPerSecond * pace * seconds
            s.dirtied[i] += dirtied
            let uncounted = cpu.uncountedDirtyFramesPerSecond * pace * seconds
            if s.tracking { s.dirty = min(Double(geometry.frameCount / 2), s.dirty + dirtied + uncounted) }
        }
    }

    private func spend(_ nanoseconds: UInt64) {
        state.withLock { accrue(&$0) }
        clock.advance(by: nanoseconds)
        state.withLock { accrue(&$0) }
    }

    package var cpuCount: Int { cpus.count }

    package func cpuCounters(_ cpu: Int) -> CPUCounters {
        state.withLock { s in
            accrue(&s)
            return CPUCounters(
                stores: UInt64(s.stores[cpu]), dirtiedFrames: countsDirtyFramesPerCPU ? UInt64(s.dirtied[cpu]) : nil)
        }
    }

    package func setThrottle(cpu: Int, fraction: Double) {
        state.withLock { s in
            accrue(&s)
            s.throttle[cpu] = fraction
            s.throttleHistory.append((cpu, fraction))
        }
    }

    package func startTracking() throws(HardwareError) {
        state.withLock { s in
            accrue(&s)
            s.tracking = true
            s.dirty = 0
        }
    }

    package func stopTracking() {
        state.withLock { s in
            accrue(&s)
            s.tracking = false
            s.dirty = 0
        }
    }

    package var dirtyFrameCount: Int {
        state.withLock { s in
            accrue(&s)
            return Int(s.dirty)
        }
    }

    package func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError)
        -> HarvestResult
    {
        try flags.validate()
        spend(10_000)
        return state.withLock { s in
            accrue(&s)
            // Dirty frames are every other frame: scattered, none adjacent; at most half of memory.
            let n = min(Int(s.dirty), output.count, frames.count / 2)
            for i in 0..<n { output[i] = UInt32(frames.lowerBound + 2 * i) }
            if flags.contains(.clear) { s.dirty -= Double(n) }
            return HarvestResult(
                reported: n, cleared: flags.contains(.clear) ? n : 0,
                scanEnd: n == output.count ? frames.lowerBound + n : frames.upperBound)
        }
    }

    package func copyToSpare(frames: Range<Int>) { spend(UInt64(frames.count) * 125) }
    /// A list of ``BlackoutModel/splitFrames`` frames or more is copied by two threads, 1.8 times
    /// as fast (as the emulation's is).
    package func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        let nanoseconds = Double(frameList.count * 1_000)
        spend(UInt64(frameList.count >= BlackoutModel.splitFrames ? nanoseconds / 1.8 : nanoseconds))
    }

    package func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        spend(UInt64(frames.count) * 10)
        return VerifyResult(checked: frames.count)
    }

    package func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>)
        -> VerifyResult
    {
        VerifyResult(checked: frameList.count)
    }

    package func enterBlackout() throws(HardwareError) -> UInt64 {
        spend(stopNanoseconds)
        state.withLock { $0.inBlackout = true }
        return stopNanoseconds
    }

    package func leaveBlackout() {
        spend(1_000)
        state.withLock { s in
            s.inBlackout = false
            s.lastAccrual = clock.nanoseconds()
        }
    }

    package func setDMADualWrite(_ enabled: Bool) {}
    package func setLockstep(_ enabled: Bool) { state.withLock { $0.lockstep = enabled } }
}
