/// The Stratus tracker's walk over every process's page tables (from the Stratus page-tracking
/// post; docs/architecture.md lists the sources): at a harvest, the
/// hardware dirty bits of entries that map frames in range join the tracking bitvector and, when
/// cleared, move to SOFTDIRTY, so that the operating system's own view of dirty pages never
/// changes because mirrord tracks; and the emulated OS's writeback, which shows that it does not.
///
/// Called under ``EmulatedMMU``'s lock.
struct DirtyBitWalk: Sendable {
    let tables: PageTables
    /// Split a dirty huge page before clearing it (off only as a negative control).
    let splitHugePages: Bool

    private var tracker: DirtyTracker { tables.tracker }
    private var arena: PageTableArena { tables.arena }
    private static let pagesPerTable = PageTables.pagesPerTable

    /// Moves the hardware dirty bits of every entry of `spaces` mapping a frame in `range` into
    /// the tracking bitvector; with `clear`, clears them into SOFTDIRTY. A dirty huge page is
    /// split first, so frames outside `range` keep their dirty state and later stores dirty single
    /// frames. Returns how many dirty bits were cleared. The caller makes the writers acknowledge
    /// (the shootdown) before copying.
    func harvest(_ spaces: [AddressSpace], _ range: Range<Int>, clear: Bool) -> Int {
        var cleared = 0
        for space in spaces {
            for region in space.regions {
                guard let pmd = tables.pmdSlot(space, region: region, create: false) else { continue }
                var pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                guard pmdEntry.isPresent else { continue }
                if pmdEntry.isHuge {
                    guard pmdEntry.isDirty else { continue }
                    let first = pmdEntry.number
                    let inside = range.clamped(to: first..<(first + Self.pagesPerTable))
                    if inside.isEmpty { continue }
                    // No split (or no page table left to split into): record the frames in
                    // range and clear the huge entry's bit, as the negative control does.
                    if !clear || !splitHugePages || !tables.split(pmd) {
                        for frame in inside { tracker.recordHarvested(frame) }
                        if clear, tables.takeDirty(pmd) { cleared += 1 }
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
                    tracker.recordHarvested(frame)
                    if clear, tables.takeDirty(pte) { cleared += 1 }
                }
                if keptOutside { arena.hintDirty(pmdEntry.number) }
            }
        }
        return cleared
    }

    /// The frames of `spaces` whose entries are dirty and that `bitmap` does not hold yet, each
    /// counted once (several entries may map one frame: fork, copy-on-write tables): with the
    /// bitvector's own count, the exact number of frames the next harvest reports. Changes
    /// nothing; `seen` is scratch room of one bit a frame (`seenWords` words), all clear, left clear.
    func countDirtyFrames(
        _ spaces: [AddressSpace], outside bitmap: TrackingBitmap, seen: UnsafeMutablePointer<UInt64>, seenWords: Int
    ) -> Int {
        var counted = 0
        func count(_ frame: Int) {
            let bit: UInt64 = 1 &<< UInt64(frame & 63)
            guard !bitmap.isDirty(frame), seen[frame >> 6] & bit == 0 else { return }
            seen[frame >> 6] |= bit
            counted += 1
        }
        for space in spaces {
            for region in space.regions {
                guard let pmd = tables.pmdSlot(space, region: region, create: false) else { continue }
                let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                guard pmdEntry.isPresent else { continue }
                if pmdEntry.isHuge {
                    if pmdEntry.isDirty {
                        for frame in pmdEntry.number..<(pmdEntry.number + Self.pagesPerTable) { count(frame) }
                    }
                    continue
                }
                guard arena.mayBeDirty(pmdEntry.number, take: false) else { continue }
                for i in 0..<Self.pagesPerTable {
                    let entry = arena.entry(pmdEntry.number, i).pointee.load(ordering: .acquiring)
                    if entry & PageTableEntry.dirty != 0 { count(PageTableEntry(rawValue: entry).number) }
                }
            }
        }
        if counted > 0 { seen.update(repeating: 0, count: seenWords) }
        return counted
    }

    /// Clears every hardware dirty bit of `spaces` into SOFTDIRTY without recording it: tracking
    /// starts with every frame clean, since the full copy follows.
    func cleanAll(_ spaces: [AddressSpace]) {
        for space in spaces {
            for region in space.regions {
                guard let pmd = tables.pmdSlot(space, region: region, create: false) else { continue }
                let pmdEntry = PageTableEntry(rawValue: pmd.pointee.load(ordering: .acquiring))
                guard pmdEntry.isPresent else { continue }
                if pmdEntry.isHuge {
                    tables.takeDirty(pmd)
                    continue
                }
                for i in 0..<Self.pagesPerTable { tables.takeDirty(arena.entry(pmdEntry.number, i)) }
            }
        }
    }

    /// The emulated OS writeback: the pages of `space` the OS considers dirty (hardware or
    /// SOFTDIRTY), which it then cleans, as `ptep_test_and_clear_dirty` does in the Stratus patch: the
    /// tracker records a hardware-dirty frame first, so cleaning never hides a write from it.
    func writeback(_ space: AddressSpace) -> [Int] {
        var pages: [Int] = []
        let clean = ~(PageTableEntry.dirty | PageTableEntry.softDirty)
        for region in space.regions.sorted() {
            guard let pmd = tables.pmdSlot(space, region: region, create: false) else { continue }
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
