import MirrorCore

extension MachineOptions {
    /// What the CPUs run (`[workload]`).
    package struct Workload: Sendable, Hashable {
        /// Where the stores go.
        package var pattern: Pattern = .hotset
        /// How many CPU threads store.
        package var cpus: Int = 2
        /// Bytes stored a second, over all CPUs (shared evenly), unless ``cpuRates`` gives each
        /// CPU its own.
        package var rate: ByteRate = .limited(bytesPerSecond: 32 << 20)
        /// Each CPU's own rate, one a CPU; empty to share ``rate`` evenly.
        package var cpuRates: [ByteRate] = []
        /// Each CPU's own pattern, one a CPU; empty for ``pattern`` on every CPU.
        package var cpuPatterns: [Pattern] = []
        /// Makes the store sequence reproducible.
        package var seed: UInt64 = 1
        /// The share of frames in the hot set (``Pattern/hotset``).
        package var hotFraction: Double = 0.05
        /// The share of stores that go to the hot set (``Pattern/hotset``).
        package var hotShare: Double = 0.9
        /// Bytes written by one store (a power of two, 8 B to one frame).
        package var storeSize: Int = 64
        /// The lackey log replayed by ``Pattern/trace``.
        package var tracePath: String = ""
        /// Page-table operations a second over all CPUs (map, unmap, remap, fork, exit); 0 for
        /// none. Needs the MMU.
        package var churn: Double = 200

        /// The defaults.
        package init() {}

        /// Whether some CPU replays the trace, so that `workload.trace` must name a usable file.
        package var replaysTrace: Bool {
            PerCPU.any(cpus: cpus, own: cpuPatterns, shared: pattern) { $0 == .trace }
        }
    }
}
