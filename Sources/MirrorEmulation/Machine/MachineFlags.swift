import Synchronization

/// The switches of the emulated machine that its threads read: tracking, lockstep, DMA
/// dual-write, shutdown. CPUs cache them and reload them at checkpoints, so the store path never
/// loads them; the DMA engine reads dual-write once a transfer.
final class MachineFlags: Sendable {
    /// CPU stores mark their frames dirty.
    let tracking = Atomic<Bool>(false)
    /// CPU stores go to both modules.
    let lockstep = Atomic<Bool>(false)
    /// DMA transfers go to both modules.
    let dmaDualWrite = Atomic<Bool>(true)
    /// DMA transfers mark their frames dirty while tracking is on (an IOMMU's dirty log).
    let dmaTracking = Atomic<Bool>(false)
    /// While this many frames or more are dirty (0: no limit), writers wait (see ``DirtyLimit``).
    let dirtyLimit = Atomic<Int>(0)
    /// The threads are to exit.
    let shutdown = Atomic<Bool>(false)
}
