import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The emulated MMU and the part of an operating system that edits page tables: processes with
/// three-level page tables over the frames of the active module, demand mapping (4 KiB or 2 MiB
/// pages), unmap, remap to another frame, fork with copy-on-write PTE tables (the COW page-table
/// post), exit; the dirty tracker walks its tables to harvest hardware dirty bits into SOFTDIRTY
/// (the Stratus post). docs/architecture.md lists these sources.
///
/// Page-table edits happen under one lock and only on the thread of the CPU that runs the process
/// (and the harvester's walk, under the same lock), so a CPU's lock-free walk of its own tables
/// never meets a table being freed. Every entry that goes away is published to the address space's
/// MMU notifiers before its frame can be reused.
///
/// `@unchecked Sendable`: page-table words are atomic; everything else is touched only under
/// `lock`.
final class EmulatedMMU: @unchecked Sendable {
    static let pagesPerTable = PageTables.pagesPerTable
    /// Pages under one pgd entry (1 GiB of virtual space).
    static let pagesPerPGDEntry = PageTables.pagesPerPGDEntry

    let tables: PageTables
    let frames: FrameAllocator
    let tracker: DirtyTracker
    let options: EmulatedMachine.Options.MMU
    /// Whether the frames the first processes are populated with keep what the module holds (a
    /// machine started from given memory: a takeover) instead of being zero-filled.
    let keepsContents: Bool
    /// What the MMU went through.
    let statistics: MMUStatistics
    private let kernel: KernelFrameWriter
    private let walk: DirtyBitWalk
    /// One bit a frame, for counting each dirty frame once; used under the lock, left clear.
    private let seen: UnsafeMutablePointer<UInt64>
    private let seenWords: Int
    private let lock = Mutex<Void>(())
    private var spaces: [AddressSpace] = []
    private var nextID = 1

    /// An MMU over the `frameCount` frames (of `frameSize` bytes) of the active module, for `cpus` CPUs running processes of
    /// `processPages` virtual pages each (page tables are sized for them).
    init(
        frameCount: Int, processPages: Int, cpus: Int, modules: ModulePair, frameSize: Int, flags: MachineFlags,
        locks: StripeLocks, tracker: DirtyTracker, options: EmulatedMachine.Options.MMU, keepsContents: Bool = false
    ) {
        self.keepsContents = keepsContents
        let regions = processPages / Self.pagesPerTable
        let pgdEntries = (processPages + Self.pagesPerPGDEntry - 1) / Self.pagesPerPGDEntry
        // Room for every process's tables twice over (copies made by copy-on-write breaks and splits).
        let capacity = cpus * ProcessChurn.maximumProcesses * (regions + pgdEntries + 1) * 2 + 64
        let statistics = MMUStatistics()
        self.statistics = statistics
        tables = PageTables(
            arena: PageTableArena(capacity: capacity), tracker: tracker, statistics: statistics,
            softDirty: options.softDirty)
        frames = FrameAllocator(frameCount: frameCount)
        self.tracker = tracker
        self.options = options
        kernel = KernelFrameWriter(modules: modules, flags: flags, locks: locks, tracker: tracker, frameSize: frameSize)
        walk = DirtyBitWalk(tables: tables, splitHugePages: options.splitHugePages)
        seenWords = (frameCount + 63) / 64
        seen = .allocate(capacity: seenWords)
        seen.initialize(repeating: 0, count: seenWords)
    }

    deinit { seen.deallocate() }

    /// The arena holding every page table.
    var arena: PageTableArena { tables.arena }

    /// Translates a store (see ``PageTables/translateForWrite(_:page:writer:)``): the store path.
    @inline(__always)
    func translateForWrite(_ space: AddressSpace, page: Int, writer: Int) -> Int? {
        tables.translateForWrite(space, page: page, writer: writer)
    }

    // MARK: - Faults and churn (under the lock, on the owning CPU's thread)

    /// Makes a store to `page` possible: maps its region if absent (a 2 MiB page with probability
    /// `hugeShare`, drawn from `random`), breaks a shared PTE table, or copies a shared frame.
    /// Returns false when memory or page tables run out (the store is dropped).
    func resolveWriteFault(_ space: AddressSpace, page: Int, random: UInt64) -> Bool {
        lock.withLock { _ in
            let region = page / Self.pagesPerTable
            guard let pmd = tables.pmdSlot(space, region: region, create: true) else { return false }
            var pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            if !pmdEntry.isPresent {
                guard mapRegionLocked(space, region: region, huge: unitFraction(random) < options.hugeShare)
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
                guard tables.split(pmd) else { return false }
                pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            }
            if pmdEntry.isSharedTable {
                guard breakSharedTable(space, pmd: pmd) else { return false }
                pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            }
            let pte = tables.arena.entry(pmdEntry.number, page % Self.pagesPerTable)
            let entry = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
            if !entry.isPresent {
                guard let frame = frames.allocate() else { return false }
                kernel.zero(frame)
                pte.pointee.store(
                    PageTableEntry(number: frame, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
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

    /// Maps every page of `space`: each region a 2 MiB page with probability `hugeShare` (drawn
    /// from `random`), else 512 small pages, every frame zero-filled (unless ``keepsContents``:
    /// the frames hold a taken-over machine's memory). Stops quietly where memory or page tables
    /// run out (the rest faults in on demand).
    func populate(_ space: AddressSpace, random: inout WyRandom) {
        lock.withLock { _ in
            for region in 0..<space.regionCount {
                let huge = unitFraction(random.next()) < options.hugeShare
                guard mapRegionLocked(space, region: region, huge: huge, zero: !keepsContents),
                    let pmd = tables.pmdSlot(space, region: region, create: false)
                else { return }
                let entry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                if entry.isHuge { continue }
                for i in 0..<Self.pagesPerTable {
                    guard let frame = frames.allocate() else { return }
                    if !keepsContents { kernel.zero(frame) }
                    tables.arena.entry(entry.number, i).pointee.store(
                        PageTableEntry(number: frame, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
                        ordering: .releasing)
                }
            }
        }
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
            guard let pmd = tables.pmdSlot(space, region: page / Self.pagesPerTable, create: false) else {
                return false
            }
            let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
            guard pmdEntry.isPresent, !pmdEntry.isHuge, !pmdEntry.isSharedTable else { return false }
            let pte = tables.arena.entry(pmdEntry.number, page % Self.pagesPerTable)
            let old = PageTableEntry(rawValue: pte.pointee.load(ordering: .acquiring))
            guard old.isPresent, frames.referenceCount(old.number) == 1, let frame = frames.allocate() else {
                return false
            }
            kernel.copy(from: old.number, to: frame)
            let departing = PageTableEntry(
                rawValue: pte.pointee.exchange(
                    // The new frame's contents are a tracked kernel write; its entry starts clean.
                    PageTableEntry(
                        number: frame, flags: old.rawValue & ~(PageTableEntry.numberMask | PageTableEntry.dirty)
                    ).rawValue,
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
                guard let parentPMD = tables.pmdSlot(parent, region: region, create: false),
                    let childPMD = tables.pmdSlot(child, region: region, create: true)
                else { continue }
                var entry = parentPMD.pointee.load(ordering: .acquiring)
                guard entry & PageTableEntry.present != 0 else { continue }
                let number = PageTableEntry(rawValue: entry).number
                if entry & PageTableEntry.huge != 0 {
                    for i in 0..<Self.pagesPerTable { frames.retain(number + i) }
                    entry =
                        parentPMD.pointee.bitwiseAnd(~PageTableEntry.writable, ordering: .acquiringAndReleasing)
                        .newValue
                } else {
                    arena.retain(number)
                    entry =
                        parentPMD.pointee.bitwiseOr(PageTableEntry.sharedTable, ordering: .acquiringAndReleasing)
                        .newValue
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
    /// then the notifiers hear `release`. Returns true once it has; false when `interrupted` said
    /// so first, with the rest left for the next call (the space half unmapped meanwhile, as by a
    /// munmap of some of its regions).
    ///
    /// Region by region, each under the lock on its own: the exit of a process of the default
    /// 1 GiB, two-CPU machine walks up to 32,768 entries, 2-2.5 ms, and a blackout asked for
    /// meanwhile must not wait for all of it (another CPU waiting on the lock could not reach its
    /// checkpoint, nor could this one). Between two regions the exiting CPU asks `interrupted`,
    /// the others take the lock.
    @discardableResult
    func exit(_ space: AddressSpace, interrupted: () -> Bool = { false }) -> Bool {
        // Only this CPU's thread changes the regions of a space it exits: the order holds.
        let regions = lock.withLock { _ in space.regions.sorted() }
        for region in regions {
            lock.withLock { _ in unmapRegionLocked(space, region: region) }
            if interrupted() { return false }
        }
        lock.withLock { _ in endLocked(space) }
        return true
    }

    /// The last of an exit, its regions unmapped: the page directory goes and the notifiers hear
    /// `release`.
    private func endLocked(_ space: AddressSpace) {
        for g in 0..<((space.pageCount + Self.pagesPerPGDEntry - 1) / Self.pagesPerPGDEntry) {
            let entry = PageTableEntry(rawValue: arena.entry(space.pgd, g).pointee.load(ordering: .acquiring))
            if entry.isPresent { arena.release(entry.number) }
        }
        arena.release(space.pgd)
        MMUStatistics.count(statistics.exits)
        spaces.removeAll { $0 === space }
        space.notifiers.release(space)
    }

    /// The entry mapping `page` of `space` (the pmd entry for a huge page), for tests and tools.
    func entry(_ space: AddressSpace, page: Int) -> PageTableEntry? {
        lock.withLock { _ in tables.entry(space, page: page) }
    }

    /// The frame `page` of `space` maps, if any.
    func frame(_ space: AddressSpace, page: Int) -> Int? {
        guard let entry = entry(space, page: page) else { return nil }
        return entry.isHuge ? entry.number + page % Self.pagesPerTable : entry.number
    }

    /// The pmd entry of `region` of `space`, for tests.
    func pmdEntry(_ space: AddressSpace, region: Int) -> PageTableEntry? {
        lock.withLock { _ in
            tables.pmdSlot(space, region: region, create: false).map {
                PageTableEntry(rawValue: $0.pointee.load(ordering: .acquiring))
            }
        }
    }

    // MARK: - Tracking (the Stratus module's walk)

    /// Moves the hardware dirty bits of frames in `range` into the tracking bitvector (see
    /// ``DirtyBitWalk/harvest(_:_:clear:)``). Returns how many dirty bits were cleared.
    @discardableResult
    func harvestDirtyBits(_ range: Range<Int>, clear: Bool) -> Int {
        lock.withLock { _ in walk.harvest(spaces, range, clear: clear) }
    }

    /// The frames whose page-table entries are dirty and that `bitmap` does not hold, each once
    /// (see ``DirtyBitWalk/countDirtyFrames(_:outside:seen:seenWords:)``).
    func dirtyFrames(outside bitmap: TrackingBitmap) -> Int {
        lock.withLock { _ in walk.countDirtyFrames(spaces, outside: bitmap, seen: seen, seenWords: seenWords) }
    }

    /// Clears every hardware dirty bit into SOFTDIRTY without recording it.
    func cleanAllDirtyBits() {
        lock.withLock { _ in walk.cleanAll(spaces) }
    }

    /// The emulated OS writeback of `space` (see ``DirtyBitWalk/writeback(_:)``).
    func writeback(_ space: AddressSpace) -> [Int] {
        lock.withLock { _ in walk.writeback(space) }
    }

    // MARK: - Under the lock

    /// Maps a region: a huge page is allocated and zero-filled at once (as a transparent huge
    /// page fault does; not with `zero` off: populating a taken-over machine's memory); small pages get an empty PTE table, and each page its zero-filled frame
    /// on the first store (demand paging).
    private func mapRegionLocked(_ space: AddressSpace, region: Int, huge: Bool, zero: Bool = true) -> Bool {
        guard let pmd = tables.pmdSlot(space, region: region, create: true),
            pmd.pointee.load(ordering: .acquiring) & PageTableEntry.present == 0
        else { return false }
        if huge, let first = frames.allocateHuge() {
            MMUStatistics.count(statistics.hugeMaps)
            if zero { for frame in first..<(first + Self.pagesPerTable) { kernel.zero(frame) } }
            pmd.pointee.store(
                PageTableEntry(
                    number: first, flags: PageTableEntry.present | PageTableEntry.writable | PageTableEntry.huge
                ).rawValue,
                ordering: .releasing)
            space.regions.insert(region)
            return true
        }
        guard let table = arena.allocate() else { return false }
        MMUStatistics.count(statistics.maps)
        pmd.pointee.store(
            PageTableEntry(number: table, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
            ordering: .releasing)
        space.regions.insert(region)
        return true
    }

    private func unmapRegionLocked(_ space: AddressSpace, region: Int) {
        guard let pmd = tables.pmdSlot(space, region: region, create: false) else { return }
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
            let old = PageTableEntry(
                rawValue: arena.entry(entry.number, i).pointee.exchange(0, ordering: .acquiringAndReleasing))
            if old.isPresent { departing.append((base + i, old)) }
        }
        space.notifiers.invalidateRange(space, pages: pages, departing: departing)
        for (_, old) in departing { frames.release(old.number) }
        arena.release(entry.number)
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
            if now & PageTableEntry.dirty != 0 { arena.hintDirty(copy) }
        }
        arena.release(shared)
        pmd.pointee.store(
            PageTableEntry(number: copy, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
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
        kernel.copy(from: old.number, to: frame)
        let departing = PageTableEntry(
            rawValue: pte.pointee.exchange(
                PageTableEntry(number: frame, flags: PageTableEntry.present | PageTableEntry.writable).rawValue,
                ordering: .acquiringAndReleasing))
        space.notifiers.invalidatePage(space, page: page, departing: departing)
        frames.release(old.number)
        return true
    }
}
