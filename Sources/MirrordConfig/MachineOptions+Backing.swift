extension MachineOptions {
    /// What the two modules are made of (`memory.backing`).
    package enum Backing: String, Sendable, Hashable, CaseIterable {
        /// Anonymous memory, gone when the process exits.
        case anonymous
        /// Two image files, `active.img` and `spare.img` in `memory.state_dir`, mapped shared, so
        /// that outside tools can compare them after a run.
        case file
    }
}
