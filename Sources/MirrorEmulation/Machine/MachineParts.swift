import MirrorCore

/// The pieces of an emulated machine that its writers, its tracking and its copier share, built
/// once by ``EmulatedMachine`` and handed to each.
package struct MachineParts: Sendable {
    let geometry: MemoryGeometry
    /// The two modules and which is active.
    let modules: ModulePair
    /// The tracking bitvector with its running count.
    package let bitmap: TrackingBitmap
    /// The Stratus tracker that fills the bitvector from page tables and departing entries.
    package let tracker: DirtyTracker
    let controller: BlackoutController
    let flags: MachineFlags
    let locks: StripeLocks
    let layout: LaneLayout
    /// The emulated MMU, when the CPUs store through page tables.
    let mmu: EmulatedMMU?
    /// Virtual pages in each emulated process (with the MMU).
    let processPages: Int
    /// The writers' copy-on-write check of an epoch's pending frames (see ``CopyOnWriteStaging``).
    package let copyOnWrite: CopyOnWriteStaging
}
