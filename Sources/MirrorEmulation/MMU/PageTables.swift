import Synchronization

/// The page-table primitives of the emulated MMU over a ``PageTableArena``: the lock-free page
/// walk a CPU's store takes (setting the hardware dirty bit, as an x86 walk does), lookups, the
/// split of a huge page into 512 entries, and the move of a cleared dirty bit into SOFTDIRTY.
///
/// Edits other than the store path's dirty bit happen under ``EmulatedMMU``'s lock.
struct PageTables: Sendable {
    /// Entries in one table, as on x86-64.
    static let pagesPerTable = PageTableArena.entriesPerTable
    /// Pages under one pgd entry (1 GiB of virtual space).
    static let pagesPerPGDEntry = pagesPerTable * pagesPerTable

    let arena: PageTableArena
    let tracker: DirtyTracker
    let statistics: MMUStatistics
    /// Move a cleared hardware dirty bit into SOFTDIRTY (off only as a negative control).
    let softDirty: Bool

    // MARK: - The store path (lock-free)

    /// Translates a store to `page` of `space` and sets the hardware dirty bit, as a CPU's page
    /// walk does. Returns the frame, or nil when the store must fault (not mapped, write-protected,
    /// shared table). Only the CPU running `space` calls it.
    @inline(__always)
    func translateForWrite(_ space: AddressSpace, page: Int, writer: Int) -> Int? {
        let pgdEntry = arena.entry(space.pgd, page / Self.pagesPerPGDEntry).pointee.load(ordering: .acquiring)
        guard pgdEntry & PageTableEntry.present != 0 else { return nil }
        let pmd = arena.entry(
            Int((pgdEntry & PageTableEntry.numberMask) >> PageTableEntry.numberShift),
            (page / Self.pagesPerTable) % Self.pagesPerTable)
        let pmdEntry = pmd.pointee.load(ordering: .acquiring)
        guard pmdEntry & PageTableEntry.present != 0 else { return nil }
        let number = Int((pmdEntry & PageTableEntry.numberMask) >> PageTableEntry.numberShift)
        if pmdEntry & PageTableEntry.huge != 0 {
            guard pmdEntry & PageTableEntry.writable != 0 else { return nil }
            if pmdEntry & PageTableEntry.dirty == 0 { setDirty(pmd, writer: writer, frames: Self.pagesPerTable) }
            return number + page % Self.pagesPerTable
        }
        guard pmdEntry & PageTableEntry.sharedTable == 0 else { return nil }
        let pte = arena.entry(number, page % Self.pagesPerTable)
        let entry = pte.pointee.load(ordering: .acquiring)
        guard
            entry & (PageTableEntry.present | PageTableEntry.writable) == PageTableEntry.present
                | PageTableEntry.writable
        else { return nil }
        if entry & PageTableEntry.dirty == 0 {
            setDirty(pte, writer: writer, frames: 1)
            arena.hintDirty(number)
        }
        return Int((entry & PageTableEntry.numberMask) >> PageTableEntry.numberShift)
    }

    @inline(__always)
    private func setDirty(_ slot: UnsafeMutablePointer<Atomic<UInt64>>, writer: Int, frames: Int) {
        if slot.pointee.bitwiseOr(PageTableEntry.dirty, ordering: .acquiringAndReleasing).oldValue
            & PageTableEntry.dirty == 0
        {
            tracker.dirtyBitSet(writer: writer, frames: frames)
        }
    }

    // MARK: - Under the MMU's lock

    /// The pmd entry of `region` of `space`, creating the pmd table if asked.
    func pmdSlot(_ space: AddressSpace, region: Int, create: Bool) -> UnsafeMutablePointer<Atomic<UInt64>>? {
        guard region >= 0, region < space.regionCount else { return nil }
        let pgd = arena.entry(space.pgd, region / Self.pagesPerTable)
        var pgdEntry = PageTableEntry(rawValue: pgd.pointee.load(ordering: .acquiring))
        if !pgdEntry.isPresent {
            guard create, let table = arena.allocate() else { return nil }
            pgdEntry = PageTableEntry(number: table, flags: PageTableEntry.present | PageTableEntry.writable)
            pgd.pointee.store(pgdEntry.rawValue, ordering: .releasing)
        }
        return arena.entry(pgdEntry.number, region % Self.pagesPerTable)
    }

    /// The entry mapping `page` of `space` (the pmd entry for a huge page), if present.
    func entry(_ space: AddressSpace, page: Int) -> PageTableEntry? {
        guard let pmd = pmdSlot(space, region: page / Self.pagesPerTable, create: false) else { return nil }
        let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
        guard pmdEntry.isPresent else { return nil }
        if pmdEntry.isHuge { return pmdEntry }
        let entry = PageTableEntry(
            rawValue: arena.entry(pmdEntry.number, page % Self.pagesPerTable).pointee.load(ordering: .acquiring))
        return entry.isPresent ? entry : nil
    }

    /// Replaces a huge pmd entry by a PTE table of 512 entries with the same frames, flags and
    /// dirty state (hardware and soft). Returns false when no table is left.
    func split(_ pmd: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        guard let table = arena.allocate() else { return false }
        MMUStatistics.count(statistics.splits)
        let huge = pmd.pointee.load(ordering: .acquiring)
        let kept = huge & (PageTableEntry.present | PageTableEntry.writable | PageTableEntry.softDirty)
        for i in 0..<Self.pagesPerTable {
            arena.entry(table, i).pointee.store(
                PageTableEntry(number: PageTableEntry(rawValue: huge).number + i, flags: kept).rawValue,
                ordering: .relaxed)
        }
        // The huge entry's dirty bit moves to all 512 entries in the same exchange that retires it,
        // so a store setting it meanwhile is not lost.
        let last = pmd.pointee.exchange(
            PageTableEntry(number: table, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
            ordering: .acquiringAndReleasing)
        if last & PageTableEntry.dirty != 0 {
            for i in 0..<Self.pagesPerTable {
                arena.entry(table, i).pointee.bitwiseOr(PageTableEntry.dirty, ordering: .relaxed)
            }
            arena.hintDirty(table)
        }
        return true
    }

    /// Clears the hardware dirty bit of one entry, moving it to SOFTDIRTY. Returns whether it was set.
    @discardableResult
    func takeDirty(_ slot: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        let old = slot.pointee.bitwiseAnd(~PageTableEntry.dirty, ordering: .acquiringAndReleasing).oldValue
        guard old & PageTableEntry.dirty != 0 else { return false }
        if softDirty { slot.pointee.bitwiseOr(PageTableEntry.softDirty, ordering: .acquiringAndReleasing) }
        return true
    }
}
