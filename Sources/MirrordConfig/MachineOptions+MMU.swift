extension MachineOptions {
    /// The emulated MMU (`[mmu]`, `tracking.departing_hook`).
    package struct MMU: Sendable, Hashable {
        /// CPUs run processes whose stores go through page tables, and dirty bits live in
        /// page-table entries; off, stores mark a per-frame bitvector directly.
        package var enabled: Bool = true
        /// The share of mapped regions given a 2 MiB page.
        package var hugeShare: Double = 0.25
        /// Record the dirty bit of a page-table entry that goes away (unmap, remap, copy-on-write
        /// break, exit). Off only as a negative control.
        package var departingHook: Bool = true

        /// The defaults.
        package init() {}
    }
}
