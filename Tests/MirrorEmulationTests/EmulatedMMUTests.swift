import MirrorCore
import Testing

@testable import MirrorEmulation

@Suite("Emulated MMU: translation, huge pages, copy-on-write, notifiers, SOFTDIRTY", .serialized)
struct EmulatedMMUTests {
    static func huge(_ mmu: inout EmulatedMachine.Options.MMU) { mmu.hugeShare = 1 }

    @Test("a store translates through pgd → pmd → pte, faults in a zeroed frame, and sets the PTE's dirty bit")
    func translation() throws {
        let (machine, mmu) = try quietMMUMachine()
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        #expect(mmu.translateForWrite(space, page: 700, writer: 0) == nil, "an unmapped page must fault")
        let frame = try #require(mmu.store(space, page: 700, value: 42, active: machine.active))
        let entry = try #require(mmu.entry(space, page: 700))
        #expect(entry.isPresent && entry.isWritable && entry.isDirty && !entry.isHuge)
        #expect(entry.number == frame)
        #expect(mmu.word(frame, in: machine.active) == 42)
        #expect(mmu.translateForWrite(space, page: 700, writer: 0) == frame)
        #expect(mmu.translateForWrite(space, page: 4096 + 1, writer: 0) == nil, "outside the address space")
        // Another page of the same region: same PTE table, its own frame.
        let table = mmu.pmdEntry(space, region: 1)?.number
        let other = try #require(mmu.store(space, page: 701, value: 1, active: machine.active))
        #expect(other != frame)
        #expect(mmu.pmdEntry(space, region: 1)?.number == table)
    }

    @Test("a huge mapping covers 512 aligned frames with one pmd entry; a store dirties the pmd entry")
    func hugeMapping() throws {
        let (machine, mmu) = try quietMMUMachine(configure: Self.huge)
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let frame = try #require(mmu.store(space, page: 1024 + 5, value: 9, active: machine.active))
        let pmd = try #require(mmu.pmdEntry(space, region: 2))
        #expect(pmd.isHuge && pmd.isDirty)
        #expect(pmd.number % 512 == 0)
        #expect(frame == pmd.number + 5)
    }

    @Test("a harvest over part of a huge page splits it first; the frames outside keep their dirty state")
    func partialHarvestSplits() throws {
        let (machine, mmu) = try quietMMUMachine(configure: Self.huge)
        let lost = try framesLosingDirtyState(machine, mmu)
        #expect(lost.isEmpty, "frames outside the harvested range lost their dirty bit: \(lost.prefix(5))")
    }

    @Test("negative control: without the split, a partial harvest loses the dirty state of the frames outside")
    func partialHarvestWithoutSplitLosesDirtyState() throws {
        let (machine, mmu) = try quietMMUMachine {
            $0.hugeShare = 1
            $0.splitHugePages = false
        }
        let lost = try framesLosingDirtyState(machine, mmu)
        #expect(lost.count == 256, "the check must catch the 256 frames outside the range")
    }

    /// Dirties a huge page, harvests (get and clear) half of its frames, then harvests everything
    /// and returns the frames of the other half that were no longer reported dirty.
    func framesLosingDirtyState(_ machine: EmulatedMachine, _ mmu: EmulatedMMU) throws -> [Int] {
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        _ = try #require(mmu.store(space, page: 512, value: 1, active: machine.active))  // faulted in before tracking
        try machine.startTracking()
        let first = try #require(mmu.store(space, page: 512, value: 2, active: machine.active))
        #expect(first % 512 == 0)
        #expect(mmu.pmdEntry(space, region: 1)?.isDirty == true, "only the huge entry's dirty bit says it was written")
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 4096)
        defer { out.deallocate() }
        let half = try machine.harvest(frames: first..<(first + 256), flags: .getAndClear, into: out)
        #expect(half.reported == 256)
        if mmu.options.splitHugePages {
            let harvested = try #require(mmu.entry(space, page: 512))
            #expect(!harvested.isDirty && harvested.isSoftDirty, "the harvest moves the dirty bit to SOFTDIRTY")
        }
        #expect(mmu.pmdEntry(space, region: 1)?.isHuge == !mmu.options.splitHugePages)
        let rest = try machine.harvest(frames: 0..<machine.geometry.frameCount, flags: .getAndClear, into: out)
        let reported = Set(out[0..<rest.reported].map { Int($0) })
        return ((first + 256)..<(first + 512)).filter { !reported.contains($0) }
    }

    @Test("a harvest whose output vector cannot take a huge page's 512 frames leaves the rest dirty")
    func hugeHarvestCapacity() throws {
        let (machine, mmu) = try quietMMUMachine(configure: Self.huge)
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        try machine.startTracking()
        let first = try #require(mmu.store(space, page: 0, value: 1, active: machine.active))
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 100)
        defer { out.deallocate() }
        let frames = machine.geometry.frameCount
        var seen: [Int] = []
        var scan = 0
        while scan < frames {
            let result = try machine.harvest(frames: scan..<frames, flags: .getAndClear, into: out)
            seen += out[0..<result.reported].map { Int($0) }
            scan = result.scanEnd
        }
        #expect(seen == Array(first..<(first + 512)), "every frame reported once, in order, over several calls")
    }

    @Test("fork shares PTE tables copy-on-write; the first store breaks the sharing without losing a dirty bit")
    func copyOnWritePageTables() throws {
        let (machine, mmu) = try quietMMUMachine()
        let parent = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let original = try #require(mmu.store(parent, page: 10, value: 111, active: machine.active))
        _ = try #require(mmu.store(parent, page: 11, value: 222, active: machine.active))
        let child = try #require(mmu.fork(parent))
        let shared = try #require(mmu.pmdEntry(parent, region: 0))
        #expect(shared.isSharedTable)
        #expect(mmu.pmdEntry(child, region: 0)?.number == shared.number)
        #expect(mmu.arena.referenceCount(shared.number) == 2)
        #expect(mmu.translateForWrite(parent, page: 10, writer: 0) == nil, "a shared table is write-protected")

        // The parent's store breaks the table sharing (a copy keeps the dirty bits), then the
        // frame's copy-on-write gives the parent a private frame.
        let copied = try #require(mmu.store(parent, page: 10, value: 333, active: machine.active))
        #expect(copied != original)
        let parentTable = try #require(mmu.pmdEntry(parent, region: 0))
        #expect(!parentTable.isSharedTable && parentTable.number != shared.number)
        #expect(mmu.arena.referenceCount(shared.number) == 1)
        #expect(mmu.entry(parent, page: 11)?.isDirty == true, "the copied table kept page 11's dirty bit")
        #expect(mmu.entry(child, page: 11)?.isDirty == true)
        #expect(mmu.word(original, in: machine.active) == 111, "the child's frame is untouched")
        #expect(mmu.word(copied, in: machine.active) == 333)
        #expect(mmu.frame(child, page: 10) == original)
        #expect(mmu.frames.referenceCount(original) == 1)

        // The child, now alone with the old table, reuses it; its shared frame is writable again.
        #expect(try #require(mmu.store(child, page: 10, value: 444, active: machine.active)) == original)
        #expect(mmu.pmdEntry(child, region: 0)?.isSharedTable == false)
    }

    @Test("a copy-on-write break publishes the departing entry, and the tracker records its dirty frame and the copy")
    func copyOnWriteBreakRecordsDepartingEntry() throws {
        let (machine, mmu) = try quietMMUMachine()
        try machine.startTracking()
        let parent = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let original = try #require(mmu.store(parent, page: 3, value: 1, active: machine.active))
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { out.deallocate() }
        _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: out)
        #expect(!machine.parts.tracker.bitmap.isDirty(original))
        _ = try #require(mmu.store(parent, page: 3, value: 2, active: machine.active))  // the PTE is dirty again
        let child = try #require(mmu.fork(parent))
        let log = EventLog()
        child.notifiers.register(RecordingNotifier("child", log: log))
        let copy = try #require(mmu.store(child, page: 3, value: 3, active: machine.active))
        #expect(copy != original)
        #expect(log.all == ["child: page 3"], "the child's entry for the shared frame departed")
        #expect(machine.parts.tracker.bitmap.isDirty(original), "the departing entry was dirty: its frame is recorded")
        #expect(machine.parts.tracker.bitmap.isDirty(copy), "the kernel's copy into the new frame is a tracked write")
        #expect(mmu.frame(parent, page: 3) == original)
        #expect(mmu.word(original, in: machine.active) == 2)
        #expect(mmu.word(copy, in: machine.active) == 3)
    }

    @Test("an unmapped dirty page's frame reaches the tracking bitvector through the departing hook")
    func departingHook() throws {
        for hook in [true, false] {
            let (machine, mmu) = try quietMMUMachine { $0.departingHook = hook }
            let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
            _ = try #require(mmu.store(space, page: 601, value: 1, active: machine.active))  // faulted in untracked
            try machine.startTracking()
            let frame = try #require(mmu.store(space, page: 601, value: 2, active: machine.active))
            #expect(!machine.parts.tracker.bitmap.isDirty(frame), "a store marks the PTE, not the bitvector")
            mmu.unmapRegion(space, region: 1)
            #expect(machine.parts.tracker.bitmap.isDirty(frame) == hook)
        }
    }

    @Test("notifiers hear invalidations in registration order; an unregistered one hears nothing more")
    func notifierOrderAndUnregister() throws {
        let (machine, mmu) = try quietMMUMachine()
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let log = EventLog()
        let first = RecordingNotifier("first", log: log)
        let second = RecordingNotifier("second", log: log)
        space.notifiers.register(first)
        space.notifiers.register(second)
        _ = try #require(mmu.store(space, page: 5, value: 1, active: machine.active))
        _ = try #require(mmu.store(space, page: 6, value: 1, active: machine.active))
        #expect(mmu.remapPage(space, page: 5))
        mmu.unmapRegion(space, region: 0)
        space.notifiers.unregister(first)
        _ = try #require(mmu.store(space, page: 700, value: 1, active: machine.active))
        mmu.exit(space)
        #expect(
            log.all == [
                "first: page 5", "second: page 5",
                "first: range 0..<512 (2 entries)", "second: range 0..<512 (2 entries)",
                "second: range 512..<1024 (1 entries)", "second: release \(space.id)",
            ])
    }

    @Test("an exit a blackout interrupts stops between two regions and ends at the next call")
    func interruptedExit() throws {
        let (machine, mmu) = try quietMMUMachine()
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let log = EventLog()
        space.notifiers.register(RecordingNotifier("n", log: log))
        for page in [5, 600, 1100] { _ = try #require(mmu.store(space, page: page, value: 1, active: machine.active)) }
        let exitsBefore = mmu.statistics.exits.load(ordering: .relaxed)

        #expect(!mmu.exit(space, interrupted: { true }), "asked to stop, the exit stops after one region")
        #expect(log.all == ["n: range 0..<512 (1 entries)"])
        #expect(mmu.frame(space, page: 5) == nil)
        #expect(mmu.frame(space, page: 600) != nil, "the regions not reached stay mapped meanwhile")
        #expect(mmu.statistics.exits.load(ordering: .relaxed) == exitsBefore)

        #expect(mmu.exit(space))
        #expect(
            log.all == [
                "n: range 0..<512 (1 entries)", "n: range 512..<1024 (1 entries)",
                "n: range 1024..<1536 (1 entries)", "n: release \(space.id)",
            ])
        #expect(mmu.statistics.exits.load(ordering: .relaxed) == exitsBefore + 1)
    }

    @Test("a second subscriber (an IOMMU shadow table) stays in sync with no change to the MMU")
    func shadowPageTable() throws {
        let (machine, mmu) = try quietMMUMachine()
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        let shadow = ShadowPageTable()
        space.notifiers.register(shadow)
        for page in [1, 2, 513] {
            shadow.fill(page: page, frame: try #require(mmu.store(space, page: page, value: 7, active: machine.active)))
        }
        #expect(mmu.remapPage(space, page: 1))
        #expect(shadow.translations[1] == nil, "a remapped page's stale translation is dropped")
        #expect(shadow.translations[2] == mmu.frame(space, page: 2))
        mmu.unmapRegion(space, region: 1)
        #expect(shadow.translations[513] == nil)
        mmu.exit(space)
        #expect(shadow.translations.isEmpty)
    }

    @Test("tracking functions can be replaced only while tracking is inactive")
    func replaceableFunctions() throws {
        let (machine, mmu) = try quietMMUMachine()
        let log = EventLog()
        let counting = DirtyTracker.Functions(
            trackEntry: { _ in log.append("entry") }, trackPhysical: { _ in log.append("phys") })
        try machine.startTracking()
        #expect(throws: DirtyTracker.ActiveError.self) { try machine.parts.tracker.replaceFunctions(counting) }
        machine.stopTracking()
        try machine.parts.tracker.replaceFunctions(counting)
        machine.parts.tracker.setActive(true)
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        _ = try #require(mmu.store(space, page: 0, value: 1, active: machine.active))
        mmu.unmapRegion(space, region: 0)
        #expect(log.all == ["phys", "entry"])
    }
}

@Suite("SOFTDIRTY: tracking never changes the operating system's view of dirty pages", .serialized)
struct SoftDirtyTests {
    /// Stores to pages, harvesting with tracking between stores when `harvests` is set, and
    /// returns what the OS writeback then finds dirty, round after round.
    func writebackRounds(tracking: Bool, softDirty: Bool) throws -> [[Int]] {
        let (machine, mmu) = try quietMMUMachine { $0.softDirty = softDirty }
        let space = try #require(mmu.createProcess(cpu: 0, pageCount: 4096))
        if tracking { try machine.startTracking() }
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { out.deallocate() }
        var random = WyRandom(seed: 11)
        var harvests = WyRandom(seed: 12)
        var rounds: [[Int]] = []
        for _ in 0..<5 {
            for _ in 0..<40 {
                mmu.store(space, page: scaled(random.next(), 2048), value: random.next(), active: machine.active)
                if tracking, harvests.next() % 4 == 0 {
                    _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: out)
                }
            }
            rounds.append(mmu.writeback(space))
        }
        return rounds
    }

    @Test("the writeback sees the same dirty pages with tracking on and off")
    func writebackUnchangedByTracking() throws {
        let untracked = try writebackRounds(tracking: false, softDirty: true)
        let tracked = try writebackRounds(tracking: true, softDirty: true)
        #expect(untracked.allSatisfy { !$0.isEmpty })
        #expect(tracked == untracked)
    }

    @Test("negative control: a tracker that clears the hardware bit without SOFTDIRTY hides pages from the writeback")
    func withoutSoftDirtyTheWritebackLosesPages() throws {
        let untracked = try writebackRounds(tracking: false, softDirty: false)
        let tracked = try writebackRounds(tracking: true, softDirty: false)
        let missing = zip(untracked, tracked).map { Set($0).subtracting($1).count }.reduce(0, +)
        #expect(missing > 0, "the writeback test must see the lost dirty state")
    }
}
