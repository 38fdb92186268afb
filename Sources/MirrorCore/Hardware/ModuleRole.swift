/// Which of the two memory modules: the one the CPUs and the DMA engine run on, or the one kept
/// equal to it.
public enum ModuleRole: String, Sendable, Hashable, CaseIterable {
    /// The module the CPUs and the DMA engine read and write.
    case active
    /// The module brought into, and kept in, the same state (lockstep).
    case spare

    /// The other module.
    public var other: ModuleRole { self == .active ? .spare : .active }
}
