import MirrorCore
import Synchronization

/// Drives an emulated machine by hand, as one more CPU with no thread of its own: a store to a
/// chosen frame, and, with the emulated MMU, processes whose pages are stored to, mapped,
/// unmapped, remapped, forked and exited on request. Tests use it to make exactly the writes and
/// page-table events a case needs at exactly the moment it needs them (from a duplex's observer,
/// between passes), without sleeping and without racing a CPU thread.
///
/// Use it on a machine whose own CPUs are off (`workload.cpus = 0`), from one thread at a time
/// (the thread running the duplex, or one that takes turns with it). The driver writes the first
/// unit of each frame (`LaneLayout`'s writer 0), and no DMA engine must run while it stores in
/// lockstep.
public final class MachineDriver: Sendable {
    /// A process of the emulated MMU, run by the driver.
    public struct Process: Sendable {
        let space: AddressSpace
        /// The process's address-space id.
        public var id: Int { space.id }
    }

    /// Why the driver could not do what was asked.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What failed.
        public var description: String
    }

    /// The machine driven.
    public let machine: EmulatedMachine
    private let parts: MachineParts
    private let values = Atomic<UInt64>(0x5EED_0000_0000_0000)

    /// The driver's own writer number: the counter slot after the machine's CPUs.
    private var writer: Int { machine.options.workload.cpus }

    /// A driver for `machine`.
    public init(machine: EmulatedMachine) {
        self.machine = machine
        parts = machine.parts
    }

    /// Whether the machine has the emulated MMU (processes and pages), or frames only.
    public var hasMMU: Bool { parts.mmu != nil }

    /// Stores a new value into the first unit of `frame`, as a CPU store to a physical frame: it
    /// marks the frame dirty while tracking is on (through the tracking in use: the bitvector, or,
    /// for a real MMU, the kernel's write-protection), and reaches the spare in lockstep. Returns
    /// the value stored.
    @discardableResult
    public func store(frame: Int) -> UInt64 {
        let value = values.add(1, ordering: .relaxed).newValue
        let offset = frame * machine.geometry.frameSize
        if parts.copyOnWrite.isArmed { parts.copyOnWrite.beforeWrite(frame) }
        machine.active.base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
        if parts.flags.lockstep.load(ordering: .acquiring) {
            machine.spare.base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
        }
        if machine.tracksOwnWrites && parts.flags.tracking.load(ordering: .acquiring) {
            parts.tracker.trackPhysical(frame)
        }
        return value
    }

    /// The first word of `frame` in the active and the spare module.
    public func words(frame: Int) -> (active: UInt64, spare: UInt64) {
        let offset = frame * machine.geometry.frameSize
        return (
            machine.active.base.load(fromByteOffset: offset, as: UInt64.self),
            machine.spare.base.load(fromByteOffset: offset, as: UInt64.self)
        )
    }

    // MARK: - Processes (the emulated MMU)

    private func mmu() throws(Failure) -> EmulatedMMU {
        guard let mmu = parts.mmu else {
            throw Failure(description: "the machine has no emulated MMU (mmu.enabled = false)")
        }
        return mmu
    }

    /// Pages in one 2 MiB region (one page table).
    public static let pagesPerRegion = 512

    /// A new process with an address space of `pages` virtual pages.
    public func createProcess(pages: Int = 8 * MachineDriver.pagesPerRegion) throws(Failure) -> Process {
        guard let space = try mmu().createProcess(cpu: 0, pageCount: pages) else {
            throw Failure(description: "no page table left for a new process")
        }
        return Process(space: space)
    }

    /// A CPU store into `page` of `process` through the page tables: the walk sets the entry's
    /// dirty bit; an unmapped region is mapped first (as one 2 MiB page when `huge`), and the
    /// fault handler breaks a shared table or copies a shared frame. Returns the frame written.
    @discardableResult
    public func store(_ process: Process, page: Int, huge: Bool = false) throws(Failure) -> Int {
        let mmu = try mmu()
        var frame = mmu.translateForWrite(process.space, page: page, writer: writer)
        if frame == nil {
            // Map the region as asked (a no-op when it is mapped), then let the fault handler
            // break a shared table or copy a shared frame.
            mmu.mapRegion(process.space, region: page / PageTables.pagesPerTable, huge: huge)
            guard mmu.resolveWriteFault(process.space, page: page, random: 0) else {
                throw Failure(description: "page \(page): out of memory or page tables")
            }
            frame = mmu.translateForWrite(process.space, page: page, writer: writer)
        }
        guard let frame else { throw Failure(description: "page \(page) did not become writable") }
        let value = values.add(1, ordering: .relaxed).newValue
        let offset = frame * machine.geometry.frameSize
        machine.active.base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
        if parts.flags.lockstep.load(ordering: .acquiring) {
            machine.spare.base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
        }
        return frame
    }

    /// Maps region `region` (512 pages) of `process`, as one 2 MiB page when `huge`.
    public func map(_ process: Process, region: Int, huge: Bool) throws(Failure) {
        guard try mmu().mapRegion(process.space, region: region, huge: huge) else {
            throw Failure(description: "region \(region) is mapped already or memory is out")
        }
    }

    /// Unmaps region `region` of `process`; its entries depart through the MMU notifiers.
    public func unmap(_ process: Process, region: Int) throws(Failure) {
        try mmu().unmapRegion(process.space, region: region)
    }

    /// Moves `page` of `process` to another frame with the same contents (page migration).
    public func remap(_ process: Process, page: Int) throws(Failure) {
        guard try mmu().remapPage(process.space, page: page) else {
            throw Failure(description: "page \(page) is not mapped as a small private page")
        }
    }

    /// Forks `process`: the child shares its page tables copy-on-write.
    public func fork(_ process: Process) throws(Failure) -> Process {
        guard let child = try mmu().fork(process.space) else {
            throw Failure(description: "no page table left to fork")
        }
        return Process(space: child)
    }

    /// Ends `process`: every entry departs, then the notifiers hear `release`.
    public func exit(_ process: Process) throws(Failure) {
        try mmu().exit(process.space)
    }

    /// The frame `page` of `process` maps, if any.
    public func frame(_ process: Process, page: Int) throws(Failure) -> Int? {
        try mmu().frame(process.space, page: page)
    }
}
