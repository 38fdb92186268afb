import MirrorCore
import Synchronization

/// The machine's two memory modules and which of them is active: the emulation's memory
/// controller. A failover swaps the roles, as the controller redirects the CPUs' accesses to the
/// other module; a removed module stays mapped (nothing reads it as memory) until a replacement
/// is installed in its place.
///
/// The CPU and DMA threads read the modules' addresses when they start and at each checkpoint,
/// so a swap made while they are stopped (a blackout) reaches every one of them before its next
/// write; the copier and the kernel's frame writes read them on each call.
package final class ModulePair: Sendable {
    private let first: MemoryModule
    private let second: MemoryModule
    /// 0 when `first` is active, 1 when `second` is.
    private let activeSlot = Atomic<Int>(0)
    private let spareInstalled: Atomic<Bool>

    /// The pair, its spare installed or (a machine that starts simplex) removed.
    init(active: MemoryModule, spare: MemoryModule, spareInstalled: Bool = true) {
        first = active
        second = spare
        self.spareInstalled = Atomic(spareInstalled)
    }

    /// The module the CPUs and the DMA engine run on.
    var active: MemoryModule { activeSlot.load(ordering: .acquiring) == 0 ? first : second }
    /// The other module (removed, when ``hasSpare`` is false).
    var spare: MemoryModule { activeSlot.load(ordering: .acquiring) == 0 ? second : first }

    /// Whether the spare is installed.
    var hasSpare: Bool { spareInstalled.load(ordering: .acquiring) }

    /// Makes the spare the active module, and removes the former active one.
    func swapRoles() {
        activeSlot.store(1 - activeSlot.load(ordering: .acquiring), ordering: .releasing)
        spareInstalled.store(false, ordering: .releasing)
    }

    /// Removes the spare.
    func removeSpare() { spareInstalled.store(false, ordering: .releasing) }

    /// Marks the spare installed again.
    func installSpare() { spareInstalled.store(true, ordering: .releasing) }
}
