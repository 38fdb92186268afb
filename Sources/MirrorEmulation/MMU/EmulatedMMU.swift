import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The emulated MMU and the part of an operating system that edits page tables: processes with
/// three-level page tables over the frames of the active module, demand mapping (4 KiB or 2 MiB
/// pages), unmap, remap to another frame, fork with copy-on-write PTE tables (seed 004), exit, and
/// the walk with which the dirty tracker harvests hardware dirty bits into SOFTDIRTY (seed 000).
///
/// Page-table edits happen under one lock and only on the thread of the CPU that runs the process
/// (and the harvester's walk, under the same lock), so a CPU's lock-free walk of its own tables
/// never meets a table being freed. Every entry that goes away is published to the address space's
/// MMU notifiers (seed 002) before its frame can be reused.
///
/// `@unchecked Sendable`: page-table words are atomic; everything else is touched only under
/// `lock`.
final class EmulatedMMU: @unchecked Sendable {
    /// Switches for negative controls; both on in real use.
    struct Options: Sendable {
        /// The share of mapped regions given a 2 MiB page (`mmu.huge_share`).
        var hugeShare: Double = 0.25
        /// Split a dirty huge page into 512 PTEs (keeping its dirty state) when a harvest clears
        /// it: required when the harvest covers only part of it (the pagemap ioctl's rule), and
        /// done for all, as KVM's dirty logging does, so later stores dirty 4 KiB, not 2 MiB.
        /// Off only as a negative control: a partial clear then loses the frames outside.
        var splitHugePages = true
        /// Move a cleared hardware dirty bit into SOFTDIRTY (the Stratus rule).
        var softDirty = true
    }

    static let pagesPerTable = PageTableArena.entriesPerTable
    /// Pages under one pgd entry (1 GiB of virtual space).
    static let pagesPerPGDEntry = pagesPerTable * pagesPerTable

    let arena: PageTableArena
    let frames: FrameAllocator
    let tracker: DirtyTracker
    let options: Options
    /// What the MMU went through.
    let statistics = MMUStatistics()
    private let active: MemoryModule
    private let spare: MemoryModule
    private let flags: MachineFlags
    private let locks: StripeLocks
    private let frameSize: Int
    private let lock = Mutex<Void>(())
    private var spaces: [AddressSpace] = []
    private var nextID = 1

    init(frameCount: Int, tableCapacity: Int, active: MemoryModule, spare: MemoryModule, flags: MachineFlags,
         locks: StripeLocks, tracker: DirtyTracker, options: Options) {
        self.locks = locks
        arena = PageTableArena(capacity: tableCapacity)
        frames = FrameAllocator(frameCount: frameCount)
        self.active = active
        self.spare = spare
        self.flags = flags
        self.tracker = tracker
        self.options = options
        frameSize = active.byteCount / frameCount
    }

    // MARK: - The store path (lock-free)

    /// Translates a store to `page` of `space` and sets the hardware dirty bit, as a CPU's page
    /// walk does. Returns the frame, or nil when the store must fault (not mapped, write-protected,
    /// shared table). Only the CPU running `space` calls it.
    @inline(__always)
    func translateForWrite(_ space: AddressSpace, page: Int, writer: Int) -> Int? {
        let pgdEntry = arena.entry(space.pgd, page / Self.pagesPerPGDEntry).pointee.load(ordering: .acquiring)
        guard pgdEntry & PageTableEntry.present != 0 else { return nil }
        let pmd = arena.entry(Int((pgdEntry & PageTableEntry.numberMask) >> PageTableEntry.numberShift),
                              (page / Self.pagesPerTable) % Self.pagesPerTable)
        let pmdEntry = pmd.pointee.load(ordering: .acquiring)
        guard pmdEntry & PageTableEntry.present != 0 else { return nil }
        let number = Int((pmdEntry & PageTableEntry.numberMask) >> PageTableEntry.numberShift)
        if pmdEntry & PageTableEntry.huge != 0 {
            guard pmdEntry & PageTableEntry.writable != 0 else { return nil }
            if pmdEntry & PageTableEntry.dirty == 0 { setDirty(pmd, writer: writer) }
            return number + page % Self.pagesPerTable
        }
        guard pmdEntry & PageTableEntry.sharedTable == 0 else { return nil }
        let pte = arena.entry(number, page % Self.pagesPerTable)
        let entry = pte.pointee.load(ordering: .acquiring)
        guard entry & (PageTableEntry.present | PageTableEntry.writable) == PageTableEntry.present | PageTableEntry.writable
        else { return nil }
        if entry & PageTableEntry.dirty == 0 {
            setDirty(pte, writer: writer)
            arena.hintDirty(number)
        }
        return Int((entry & PageTableEntry.numberMask) >> PageTableEntry.numberShift)
    }

    @inline(__always)
    private func setDirty(_ slot: UnsafeMutablePointer<Atomic<UInt64>>, writer: Int) {
        if slot.pointee.bitwiseOr(PageTableEntry.dirty, ordering: .acquiringAndReleasing).oldValue & PageTableEntry.dirty == 0 {
            tracker.bitmap.adjust(1, writer: writer)
        }
    }

    // MARK: - Faults and churn (under the lock, on the owning CPU's thread)

    /// Makes a store to `page` possible: maps its region if absent (a 2 MiB page with probability
    /// `hugeShare`, drawn from `random`), breaks a shared PTE table, or copies a shared frame.
    /// Returns false when memory or page tables run out (the store is dropped).
    func resolveWriteFault(_ space: AddressSpace, page: Int, random: UInt64) -> Bool {
        lock.withLock { _ in
            let region = page / Self.pagesPerTable
            guard let pmd = pmdSlot(space, region: region, create: true) else { return false }
            var pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            if !pmdEntry.isPresent {
                guard mapRegionLocked(space, region: region, huge: Double(random >> 11) / 9.007e15 < options.hugeShare)
                else { return false }
                pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            }
            if pmdEntry.isHuge {
                if pmdEntry.isWritable { return true }
                // A huge page shared after fork: writable again if no one else maps it, else split
                // into 512 read-only entries and copy the one frame written.
                if (0..<Self.pagesPerTable).allSatisfy({ frames.referenceCount(pmdEntry.number + $0) == 1 }) {
                    pmd.pointee.bitwiseOr(PageTableEntry.writable, ordering: .acquiringAndReleasing)
                    return true
                }
                guard split(pmd) else { return false }
                pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            }
            if pmdEntry.isSharedTable {
                guard breakSharedTable(space, pmd: pmd) else { return false }
                pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            }
            let pte = arena.entry(pmdEntry.number, page % Self.pagesPerTable)
            let entry = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
            if !entry.isPresent {
                guard let frame = frames.allocate() else { return false }
                zeroFrame(frame)
                pte.pointee.store(PageTableEntry(number: frame, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
                                  ordering: .releasing)
                return true
            }
            if !entry.isWritable { return copyOnWrite(space, page: page, pte: pte) }
            return true
        }
    }

    /// Creates a process with an empty address space of `pageCount` pages, run by `cpu`.
    func createProcess(cpu: Int, pageCount: Int) -> AddressSpace? {
        lock.withLock { _ in
            guard let pgd = arena.allocate() else { return nil }
            let space = AddressSpace(id: nextID, pgd: pgd, pageCount: pageCount, cpu: cpu)
            nextID += 1
            space.notifiers.register(tracker)
            spaces.append(space)
            return space
        }
    }

    /// Maps region `region` (512 pages) of `space`: one zero-filled 2 MiB page if `huge` and an
    /// aligned block is free, else 512 small pages filled on first store. Returns false if it is
    /// mapped already or memory is out.
    @discardableResult
    func mapRegion(_ space: AddressSpace, region: Int, huge: Bool) -> Bool {
        lock.withLock { _ in mapRegionLocked(space, region: region, huge: huge) }
    }

    /// Unmaps region `region` of `space`; its entries depart through the notifiers.
    func unmapRegion(_ space: AddressSpace, region: Int) {
        lock.withLock { _ in unmapRegionLocked(space, region: region) }
    }

    /// Moves `page` of `space` to a fresh frame with the same contents (as page migration does);
    /// the old entry departs. Returns false if the page is not mapped as a small page.
    @discardableResult
    func remapPage(_ space: AddressSpace, page: Int) -> Bool {
        lock.withLock { _ in
            guard let pmd = pmdSlot(space, region: page / Self.pagesPerTable, create: false) else { return false }
            let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            guard pmdEntry.isPresent, !pmdEntry.isHuge, !pmdEntry.isSharedTable else { return false }
            let pte = arena.entry(pmdEntry.number, page % Self.pagesPerTable)
            let old = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
            guard old.isPresent, frames.referenceCount(old.number) == 1, let frame = frames.allocate() else { return false }
            copyFrame(from: old.number, to: frame)
            let departing = PageTableEntry(rawValue: pte.pointee.exchange(
                // The new frame's contents are a tracked kernel write; its entry starts clean.
                PageTableEntry(number: frame, flags: old.rawValue & ~(PageTableEntry.numberMask | PageTableEntry.dirty)).rawValue,
                ordering: .acquiringAndReleasing))
            space.notifiers.invalidatePage(space, page: page, departing: departing)
            frames.release(old.number)
            MMUStatistics.count(statistics.remaps)
            return true
        }
    }

    /// Forks `parent`: the child shares every PTE table copy-on-write (write-protected at the pmd,
    /// reference-counted) and every huge page read-only. Returns nil when page tables run out.
    func fork(_ parent: AddressSpace) -> AddressSpace? {
        lock.withLock { _ in
            guard let pgd = arena.allocate() else { return nil }
            let child = AddressSpace(id: nextID, pgd: pgd, pageCount: parent.pageCount, cpu: parent.cpu)
            nextID += 1
            child.notifiers.register(tracker)
            for region in parent.regions.sorted() {
                guard let parentPMD = pmdSlot(parent, region: region, create: false),
                      let childPMD = pmdSlot(child, region: region, create: true)
                else { continue }
                var entry = parentPMD.pointee.load(ordering: .acquiring)
                guard entry & PageTableEntry.present != 0 else { continue }
                let number = PageTableEntry(rawValue: entry).number
                if entry & PageTableEntry.huge != 0 {
                    for i in 0..<Self.pagesPerTable { frames.retain(number + i) }
                    entry = parentPMD.pointee.bitwiseAnd(~PageTableEntry.writable, ordering: .acquiringAndReleasing).newValue
                    // The child's copy of a dirty entry is one more dirty bit in the running count.
                    if entry & PageTableEntry.dirty != 0 { tracker.bitmap.adjustShared(1) }
                } else {
                    arena.retain(number)
                    entry = parentPMD.pointee.bitwiseOr(PageTableEntry.sharedTable, ordering: .acquiringAndReleasing).newValue
                }
                childPMD.pointee.store(entry, ordering: .releasing)
                child.regions.insert(region)
            }
            spaces.append(child)
            MMUStatistics.count(statistics.forks)
            return child
        }
    }

    /// Ends `space`: every entry departs through the notifiers, frames and tables are released,
    /// then the notifiers hear `release`.
    func exit(_ space: AddressSpace) {
        lock.withLock { _ in
            for region in space.regions.sorted() { unmapRegionLocked(space, region: region) }
            for g in 0..<((space.pageCount + Self.pagesPerPGDEntry - 1) / Self.pagesPerPGDEntry) {
                let entry = PageTableEntry(rawValue: arena.entry(space.pgd, g).pointee.load(ordering: .acquiring))
                if entry.isPresent { arena.release(entry.number) }
            }
            arena.release(space.pgd)
            MMUStatistics.count(statistics.exits)
            spaces.removeAll { $0 === space }
            space.notifiers.release(space)
        }
    }

    /// The entry mapping `page` of `space` (the pmd entry for a huge page), for tests and tools.
    func entry(_ space: AddressSpace, page: Int) -> PageTableEntry? {
        lock.withLock { _ in
            guard let pmd = pmdSlot(space, region: page / Self.pagesPerTable, create: false) else { return nil }
            let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            guard pmdEntry.isPresent else { return nil }
            if pmdEntry.isHuge { return pmdEntry }
            let entry = PageTableEntry(rawValue: arena.entry(pmdEntry.number, page % Self.pagesPerTable).pointee.load(ordering: .acquiring))
            return entry.isPresent ? entry : nil
        }
    }

    /// The frame `page` of `space` maps, if any.
    func frame(_ space: AddressSpace, page: Int) -> Int? {
        guard let entry = entry(space, page: page) else { return nil }
        return entry.isHuge ? entry.number + page % Self.pagesPerTable : entry.number
    }

    /// The pmd entry of `region` of `space`, for tests.
    func pmdEntry(_ space: AddressSpace, region: Int) -> PageTableEntry? {
        lock.withLock { _ in
            pmdSlot(space, region: region, create: false).map { PageTableEntry(rawValue: $0.pointee.load(ordering: .acquiring)) }
        }
    }

    // MARK: - Tracking (the Stratus module's walk)

    /// Moves the hardware dirty bits of every entry mapping a frame in `range` into the tracking
    /// bitvector; with `clear`, clears them and sets SOFTDIRTY so the operating system still sees
    /// the pages dirty. A dirty huge page is split first, so frames outside `range` keep their
    /// dirty state and later stores dirty single frames. Returns how many dirty bits were cleared.
    /// The caller makes the writers acknowledge (the shootdown) before copying.
    @discardableResult
    func harvestDirtyBits(_ range: Range<Int>, clear: Bool) -> Int {
        lock.withLock { _ in
            var cleared = 0
            let bitmap = tracker.bitmap
            let slot = bitmap.harvesterSlot
            for space in spaces {
                for region in space.regions {
                    guard let pmd = pmdSlot(space, region: region, create: false) else { continue }
                    var pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                    guard pmdEntry.isPresent else { continue }
                    if pmdEntry.isHuge {
                        guard pmdEntry.isDirty else { continue }
                        let first = pmdEntry.number
                        let inside = range.clamped(to: first..<(first + Self.pagesPerTable))
                        if inside.isEmpty { continue }
                        // No split (or no page table left to split into): record the frames in
                        // range and clear the huge entry's bit, as the negative control does.
                        if !clear || !options.splitHugePages || !split(pmd) {
                            for frame in inside { bitmap.markDirty(frame, writer: slot) }
                            if clear {
                                takeDirty(pmd)
                                bitmap.adjust(-1, writer: slot)
                                cleared += 1
                            }
                            continue
                        }
                        pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                    }
                    // A table with no dirty bit set since its last scan is skipped. A scan that
                    // leaves out-of-range dirty entries keeps the hint for the next harvest.
                    guard arena.mayBeDirty(pmdEntry.number, take: clear) else { continue }
                    var keptOutside = false
                    for i in 0..<Self.pagesPerTable {
                        let pte = arena.entry(pmdEntry.number, i)
                        let entry = pte.pointee.load(ordering: .acquiring)
                        guard entry & PageTableEntry.dirty != 0 else { continue }
                        let frame = PageTableEntry(rawValue: entry).number
                        guard range.contains(frame) else {
                            keptOutside = true
                            continue
                        }
                        bitmap.markDirty(frame, writer: slot)
                        if clear, takeDirty(pte) {
                            bitmap.adjust(-1, writer: slot)
                            cleared += 1
                        }
                    }
                    if keptOutside { arena.hintDirty(pmdEntry.number) }
                }
            }
            return cleared
        }
    }

    /// Clears every hardware dirty bit into SOFTDIRTY without recording it: tracking starts with
    /// every frame clean, since the full copy follows.
    func cleanAllDirtyBits() {
        lock.withLock { _ in
            for space in spaces {
                for region in space.regions {
                    guard let pmd = pmdSlot(space, region: region, create: false) else { continue }
                    let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                    guard pmdEntry.isPresent else { continue }
                    if pmdEntry.isHuge { takeDirty(pmd); continue }
                    for i in 0..<Self.pagesPerTable { takeDirty(arena.entry(pmdEntry.number, i)) }
                }
            }
        }
    }

    /// Clears the hardware dirty bit of one entry, moving it to SOFTDIRTY. Returns whether it was set.
    @discardableResult
    private func takeDirty(_ slot: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        let old = slot.pointee.bitwiseAnd(~PageTableEntry.dirty, ordering: .acquiringAndReleasing).oldValue
        guard old & PageTableEntry.dirty != 0 else { return false }
        if options.softDirty { slot.pointee.bitwiseOr(PageTableEntry.softDirty, ordering: .acquiringAndReleasing) }
        return true
    }

    // MARK: - The operating system's own view

    /// The emulated OS writeback: the pages of `space` the OS considers dirty (hardware or
    /// SOFTDIRTY), which it then cleans, as `ptep_test_and_clear_dirty` does in the seed: the
    /// tracker records a hardware-dirty frame first, so cleaning never hides a write from it.
    func writeback(_ space: AddressSpace) -> [Int] {
        lock.withLock { _ in
            var pages: [Int] = []
            let clean = ~(PageTableEntry.dirty | PageTableEntry.softDirty)
            for region in space.regions.sorted() {
                guard let pmd = pmdSlot(space, region: region, create: false) else { continue }
                let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                guard pmdEntry.isPresent else { continue }
                let base = region * Self.pagesPerTable
                if pmdEntry.isHuge {
                    guard pmdEntry.isDirtyForOS else { continue }
                    tracker.trackEntry(pmdEntry)
                    pmd.pointee.bitwiseAnd(clean, ordering: .acquiringAndReleasing)
                    pages += base..<(base + Self.pagesPerTable)
                    continue
                }
                for i in 0..<Self.pagesPerTable {
                    let pte = arena.entry(pmdEntry.number, i)
                    let entry = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
                    guard entry.isPresent, entry.isDirtyForOS else { continue }
                    tracker.trackEntry(entry)
                    pte.pointee.bitwiseAnd(clean, ordering: .acquiringAndReleasing)
                    pages.append(base + i)
                }
            }
            return pages
        }
    }

    // MARK: - Under the lock

    /// The pmd entry of `region`, creating the pmd table if asked.
    private func pmdSlot(_ space: AddressSpace, region: Int, create: Bool) -> UnsafeMutablePointer<Atomic<UInt64>>? {
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

    /// Maps a region: a huge page is allocated and zero-filled at once (as a transparent huge
    /// page fault does); small pages get an empty PTE table, and each page its zero-filled frame
    /// on the first store (demand paging).
    private func mapRegionLocked(_ space: AddressSpace, region: Int, huge: Bool) -> Bool {
        guard let pmd = pmdSlot(space, region: region, create: true),
              pmd.pointee.load(ordering: .acquiring) & PageTableEntry.present == 0
        else { return false }
        if huge, let first = frames.allocateHuge() {
            MMUStatistics.count(statistics.hugeMaps)
            for frame in first..<(first + Self.pagesPerTable) { zeroFrame(frame) }
            pmd.pointee.store(PageTableEntry(number: first, flags: PageTableEntry.present | PageTableEntry.writable | PageTableEntry.huge).rawValue,
                              ordering: .releasing)
            space.regions.insert(region)
            return true
        }
        guard let table = arena.allocate() else { return false }
        MMUStatistics.count(statistics.maps)
        pmd.pointee.store(PageTableEntry(number: table, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
                          ordering: .releasing)
        space.regions.insert(region)
        return true
    }

    private func unmapRegionLocked(_ space: AddressSpace, region: Int) {
        guard let pmd = pmdSlot(space, region: region, create: false) else { return }
        let entry = PageTableEntry(rawValue: pmd.pointee.exchange(0, ordering: .acquiringAndReleasing))
        space.regions.remove(region)
        guard entry.isPresent else { return }
        MMUStatistics.count(statistics.unmaps)
        let base = region * Self.pagesPerTable
        let pages = base..<(base + Self.pagesPerTable)
        if entry.isHuge {
            space.notifiers.invalidateRange(space, pages: pages, departing: [(base, entry)])
            for i in 0..<Self.pagesPerTable { frames.release(entry.number + i) }
            return
        }
        if arena.referenceCount(entry.number) > 1 {
            // The table lives on in the address space sharing it, dirty bits and all.
            arena.release(entry.number)
            return
        }
        var departing: [(page: Int, entry: PageTableEntry)] = []
        for i in 0..<Self.pagesPerTable {
            let old = PageTableEntry(rawValue: arena.entry(entry.number, i).pointee.exchange(0, ordering: .acquiringAndReleasing))
            if old.isPresent { departing.append((base + i, old)) }
        }
        space.notifiers.invalidateRange(space, pages: pages, departing: departing)
        for (_, old) in departing { frames.release(old.number) }
        arena.release(entry.number)
    }

    /// Replaces a huge pmd entry by a PTE table of 512 entries with the same frames, flags and
    /// dirty state (hardware and soft).
    private func split(_ pmd: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        guard let table = arena.allocate() else { return false }
        MMUStatistics.count(statistics.splits)
        let huge = pmd.pointee.load(ordering: .acquiring)
        let kept = huge & (PageTableEntry.present | PageTableEntry.writable | PageTableEntry.softDirty)
        for i in 0..<Self.pagesPerTable {
            arena.entry(table, i).pointee.store(
                PageTableEntry(number: PageTableEntry(rawValue: huge).number + i, flags: kept).rawValue, ordering: .relaxed)
        }
        // The huge entry's dirty bit moves to all 512 entries in the same exchange that retires it,
        // so a store setting it meanwhile is not lost.
        let last = pmd.pointee.exchange(
            PageTableEntry(number: table, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
            ordering: .acquiringAndReleasing)
        if last & PageTableEntry.dirty != 0 {
            for i in 0..<Self.pagesPerTable { arena.entry(table, i).pointee.bitwiseOr(PageTableEntry.dirty, ordering: .relaxed) }
            arena.hintDirty(table)
            // One counted dirty bit became 512.
            tracker.bitmap.adjustShared(Self.pagesPerTable - 1)
        }
        return true
    }

    /// Breaks the copy-on-write sharing of the PTE table behind `pmd`: reuses it if no one else
    /// shares it any more, else gives `space` its own copy. Entries keep their dirty bits; the
    /// frames become shared, so both copies are write-protected.
    private func breakSharedTable(_ space: AddressSpace, pmd: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
        let shared = pmdEntry.number
        if arena.referenceCount(shared) == 1 {
            pmd.pointee.bitwiseAnd(~PageTableEntry.sharedTable, ordering: .acquiringAndReleasing)
            return true
        }
        guard let copy = arena.allocate() else { return false }
        MMUStatistics.count(statistics.tableCopies)
        for i in 0..<Self.pagesPerTable {
            let source = arena.entry(shared, i)
            let entry = source.pointee.load(ordering: .acquiring)
            guard entry & PageTableEntry.present != 0 else { continue }
            frames.retain(PageTableEntry(rawValue: entry).number)
            source.pointee.bitwiseAnd(~PageTableEntry.writable, ordering: .acquiringAndReleasing)
            // Copy after write-protecting, and copy the dirty bit as it is now: nothing departs.
            let now = source.pointee.load(ordering: .acquiring)
            arena.entry(copy, i).pointee.store(now, ordering: .relaxed)
            if now & PageTableEntry.dirty != 0 {
                tracker.bitmap.adjustShared(1)
                arena.hintDirty(copy)
            }
        }
        arena.release(shared)
        pmd.pointee.store(PageTableEntry(number: copy, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
                          ordering: .releasing)
        return true
    }

    /// The ordinary copy-on-write of one frame: a write-protected entry whose frame others still
    /// map gets a private copy (the old entry departs); one no longer shared becomes writable.
    private func copyOnWrite(_ space: AddressSpace, page: Int, pte: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        let old = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
        if frames.referenceCount(old.number) == 1 {
            pte.pointee.bitwiseOr(PageTableEntry.writable, ordering: .acquiringAndReleasing)
            return true
        }
        guard let frame = frames.allocate() else { return false }
        MMUStatistics.count(statistics.frameCopies)
        copyFrame(from: old.number, to: frame)
        let departing = PageTableEntry(rawValue: pte.pointee.exchange(
            PageTableEntry(number: frame, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
            ordering: .acquiringAndReleasing))
        space.notifiers.invalidatePage(space, page: page, departing: departing)
        frames.release(old.number)
        return true
    }

    /// The kernel zero-fills a frame it hands out (a write the tracker must see). Whole-frame
    /// kernel writes cover the DMA engine's bytes too, so they take the frame's stripe lock: in
    /// lockstep a DMA transfer landing between the two writes would otherwise leave the modules
    /// different for good.
    private func zeroFrame(_ frame: Int) {
        let stripe = StripeLocks.stripe(of: frame)
        locks.lock(stripe)
        memset(active.base + frame * frameSize, 0, frameSize)
        if flags.lockstep.load(ordering: .acquiring) { memset(spare.base + frame * frameSize, 0, frameSize) }
        locks.unlock(stripe)
        tracker.trackPhysical(frame)
    }

    /// The kernel copies a frame (copy-on-write, migration), under the stripe locks of both
    /// frames (lower stripe first): a DMA transfer into the source between the two copies would
    /// give the target different bytes in the two modules.
    private func copyFrame(from source: Int, to target: Int) {
        let low = min(StripeLocks.stripe(of: source), StripeLocks.stripe(of: target))
        let high = max(StripeLocks.stripe(of: source), StripeLocks.stripe(of: target))
        locks.lock(low)
        if high != low { locks.lock(high) }
        memcpy(active.base + target * frameSize, active.base + source * frameSize, frameSize)
        if flags.lockstep.load(ordering: .acquiring) {
            memcpy(spare.base + target * frameSize, spare.base + source * frameSize, frameSize)
        }
        if high != low { locks.unlock(high) }
        locks.unlock(low)
        tracker.trackPhysical(target)
    }
}
