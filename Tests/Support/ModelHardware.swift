import MirrorCore
import Synchronization

/// A ``DuplexHardware`` whose CPUs are a model, not threads: each CPU stores and dirties frames at
/// a fixed rate, slowed by the throttle the engine sets, on a ``ScriptedClock`` that the
/// operations move (a copied frame 1 µs, a harvest 10 µs, a stop and a resume `stopNanoseconds`
/// each). The dirty set grows with the model time that passes, so the engine's convergence control
/// (what it throttles, how the passes end, what it cost the workload) can be checked exactly.
public final class ModelHardware: DuplexHardware {
    /// One modelled CPU at full pace.
    public struct CPU: Sendable {
        /// Stores a second.
        public var storesPerSecond: Double
        /// Frames a second it turns from clean to dirty.
        public var dirtyFramesPerSecond: Double

        public init(storesPerSecond: Double, dirtyFramesPerSecond: Double) {
            self.storesPerSecond = storesPerSecond
            self.dirtyFramesPerSecond = dirtyFramesPerSecond
        }
    }

    /// What the engine did to the model.
    public struct State: Sendable {
        public var dirty = 0.0
        public var stores: [Double]
        public var dirtied: [Double]
        public var throttle: [Double]
        /// Every throttle the engine set, in order: (cpu, fraction).
        public var throttleHistory: [(cpu: Int, fraction: Double)] = []
        public var inBlackout = false
        public var lockstep = false
        public var tracking = false
        var lastAccrual: UInt64 = 0
    }

    public let backendName = "model"
    public let geometry: MemoryGeometry
    public let clock = ScriptedClock()
    public let cpus: [CPU]
    /// Whether the backend counts frames per CPU (the emulation does; a real MMU does not).
    public let countsDirtyFramesPerCPU: Bool
    private let stopNanoseconds: UInt64
    private let state: Mutex<State>

    public init(frameCount: Int = 262_144, cpus: [CPU], countsDirtyFramesPerCPU: Bool = true, stopNanoseconds: UInt64 = 1_000) {
        geometry = MemoryGeometry(frameSize: 4096, frameCount: frameCount)
        self.cpus = cpus
        self.countsDirtyFramesPerCPU = countsDirtyFramesPerCPU
        self.stopNanoseconds = stopNanoseconds
        state = Mutex(State(stores: Array(repeating: 0, count: cpus.count), dirtied: Array(repeating: 0, count: cpus.count),
                            throttle: Array(repeating: 0, count: cpus.count)))
        let start = clock.nanoseconds()
        state.withLock { $0.lastAccrual = start }
    }

    public var snapshot: State { state.withLock { s in accrue(&s); return s } }

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
            if s.tracking { s.dirty = min(Double(geometry.frameCount / 2), s.dirty + dirtied) }
        }
    }

    private func spend(_ nanoseconds: UInt64) {
        state.withLock { accrue(&$0) }
        clock.advance(by: nanoseconds)
        state.withLock { accrue(&$0) }
    }

    public var cpuCount: Int { cpus.count }

    public func cpuCounters(_ cpu: Int) -> CPUCounters {
        state.withLock { s in
            accrue(&s)
            return CPUCounters(stores: UInt64(s.stores[cpu]), dirtiedFrames: countsDirtyFramesPerCPU ? UInt64(s.dirtied[cpu]) : nil)
        }
    }

    public func setThrottle(cpu: Int, fraction: Double) {
        state.withLock { s in
            accrue(&s)
            s.throttle[cpu] = fraction
            s.throttleHistory.append((cpu, fraction))
        }
    }

    public func startTracking() throws(HardwareError) {
        state.withLock { s in accrue(&s); s.tracking = true; s.dirty = 0 }
    }

    public func stopTracking() { state.withLock { s in accrue(&s); s.tracking = false; s.dirty = 0 } }

    public var dirtyFrameCount: Int { state.withLock { s in accrue(&s); return Int(s.dirty) } }

    public func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>) throws(HarvestError)
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
            return HarvestResult(reported: n, cleared: flags.contains(.clear) ? n : 0,
                                 scanEnd: n == output.count ? frames.lowerBound + n : frames.upperBound)
        }
    }

    public func copyToSpare(frames: Range<Int>) { spend(UInt64(frames.count) * 125) }
    /// A list of 512 frames or more is copied by two threads, 1.8 times as fast (as the emulation's is).
    public func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        let nanoseconds = Double(frameList.count * 1_000)
        spend(UInt64(frameList.count >= 512 ? nanoseconds / 1.8 : nanoseconds))
    }

    public func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        spend(UInt64(frames.count) * 10)
        return VerifyResult(checked: frames.count)
    }

    public func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        VerifyResult(checked: frameList.count)
    }

    public func enterBlackout() throws(HardwareError) -> UInt64 {
        spend(stopNanoseconds)
        state.withLock { $0.inBlackout = true }
        return stopNanoseconds
    }

    public func leaveBlackout() {
        spend(1_000)
        state.withLock { s in s.inBlackout = false; s.lastAccrual = clock.nanoseconds() }
    }

    public func setDMADualWrite(_ enabled: Bool) {}
    public func setLockstep(_ enabled: Bool) { state.withLock { $0.lockstep = enabled } }
}
