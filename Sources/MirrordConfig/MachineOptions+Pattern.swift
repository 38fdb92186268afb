extension MachineOptions {
    /// Where the CPUs' stores go (`workload.pattern`, `workload.cpu_patterns`).
    package enum Pattern: String, Sendable, Hashable, CaseIterable {
        /// Every frame alike.
        case uniform
        /// A hot fraction of frames takes most stores.
        case hotset
        /// Frame after frame, wrapping around.
        case sequential
        /// Replay of a `valgrind --tool=lackey --trace-mem=yes` log (`workload.trace`).
        case trace
    }
}
