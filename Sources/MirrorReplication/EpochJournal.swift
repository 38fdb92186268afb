import CMirrorShims

#if canImport(Glibc)
import Glibc
#endif

/// The primary's side of the export: it claims the export, writes the image in place while a
/// sync from scratch runs (the full copy and the passes), then commits each epoch atomically.
///
/// An epoch's commit, in this order: its frames into the journal half of its number, a flush,
/// its commit record written durably (FUA), then its frames in place in the image (stable at the
/// next epoch's flush, before that half is written again), but for a clean stop's last epoch and
/// the one its stop cut short, which stay in the journal (the last record says the epoch before
/// them is the newest in place). Whatever moment the primary dies, the
/// newest valid record in the export's two halves names an epoch whose frames are all in the
/// journal, and ``ExportRecovery`` brings the image to exactly that epoch, never a mix of two.
///
/// Step 4 is the costly one over the link (one request a frame): with ``Applier/standby(patience:pause:)``
/// the primary leaves it to mirrord in standby on the backup host (``ExportStandby``), which puts
/// each committed epoch in place from the export's file and marks it applied; the primary then
/// only checks the mark before it reuses a journal half. It never puts an epoch in place itself
/// then: two writers of the image could land a frame's older contents after its newer ones.
///
/// Not thread-safe: one primary thread ships epochs in order.
package final class EpochJournal {
    /// Who puts each committed epoch's frames in place in the image.
    package enum Applier: Sendable {
        /// The primary, right after the commit record (step 4).
        case primary
        /// The standby on the backup host. Before reusing a journal half the primary reads the
        /// applied mark up to `patience` times, calling `pause` between reads; then the commit
        /// fails (`standbyBehind`): the spare host is not keeping up, or its standby is gone.
        case standby(patience: Int, pause: @Sendable () -> Void)
    }

    /// The export.
    package let device: any ExportDevice
    /// The export's name in messages (its URI, or the file's path).
    package let name: String
    /// Where everything is.
    package let layout: ExportLayout
    /// The header in force (this primary's, once ``beginSync()`` wrote it).
    package private(set) var header: ExportHeader
    /// The newest committed epoch, 0 before the first of this sync.
    package private(set) var committedEpoch: UInt64 = 0
    /// The oldest committed epoch of this sync whose frames were left in the journal, not all
    /// put in place (a clean stop's last epoch, and one its stop cut short), 0 when none was:
    /// every epoch before it is in place. Its journal half is not written again.
    private var leftInJournal: UInt64 = 0
    /// Frames put in place per batch of requests (a commit's step 4): how soon a cut short takes
    /// effect.
    package var inPlaceBatchFrames = 256
    /// This sync's first epoch (epoch numbers run on across syncs), 0 before it commits: the
    /// halves' epochs before it are the previous sync's, which a standby has put in place before
    /// acknowledging this one.
    private var firstEpoch: UInt64 = 0
    /// Who puts the epochs in place.
    package let applier: Applier
    /// A generation every sync of this journal must pass: after a takeover, the generation of the
    /// export the machine was taken over from (0: none).
    private let generationFloor: UInt64
    /// The write that failed, leaving the export in a state this journal no longer knows (an
    /// epoch's frames maybe not in place, a half maybe half written): every later write is refused
    /// until a new sync (``beginSync()``) starts from scratch.
    private var broken: ExportError?
    private let record: UnsafeMutableRawBufferPointer
    private let extents: UnsafeMutableBufferPointer<ExportExtent>

    /// Claims the export `device` (named `name`) for `owner`, laid out as `layout`. Refused,
    /// with both sizes, when the export is too small; refused, naming the owner, when another
    /// host's primary owns it (but `tookOverFrom`, the host this one took over from: it was
    /// stopped for the takeover, and may have owned its own export by a takeover of its own);
    /// refused when it holds data that is not mirrord's. Nothing is written until ``beginSync()``.
    /// After a takeover, `after` is the taken-over export's generation: every sync here gets a
    /// larger one, whatever the two hosts' clocks say, so the machine's later epochs compare as
    /// newer than the epoch it was taken over from.
    package init(
        device: any ExportDevice, name: String, layout: ExportLayout, owner: ExportOwner, applier: Applier = .primary,
        tookOverFrom: ExportOwner? = nil, after generationFloor: UInt64 = 0
    ) throws(ExportError) {
        self.generationFloor = generationFloor
        guard device.size >= layout.requiredBytes else {
            throw ExportError(
                .tooSmall, "open \(name)",
                "the export has \(device.size) bytes; memory.size (\(UInt64(layout.frameCount) * UInt64(layout.frameSize)) bytes) "
                    + "plus the epoch journal (2 × remote.staging and records) needs \(layout.requiredBytes) bytes")
        }
        let found = try Self.readHeader(device, name: name)
        switch found {
        case .blank:
            // A header zeroed to give the export to mirrord may leave commit records behind it,
            // of generations counted from 1 again: this export's generations start past any of
            // them (the time now, in nanoseconds).
            header = ExportHeader(layout: layout, owner: owner, generation: Self.wallClock(), sequence: 0)
        case .foreign:
            throw ExportError(
                .notMirrord, "open \(name)",
                "the export holds data that is not mirrord's (no mirrord header in its first 8 KiB); refusing to overwrite it "
                    + "(zero its first 8 KiB to give it to mirrord)")
        case .header(let current):
            guard current.owner.isSameHost(as: owner) || tookOverFrom.map(current.owner.isSameHost(as:)) == true else {
                throw ExportError(
                    .owned, "open \(name)",
                    "the export is owned by another primary, \(current.owner), since \(current.owner.since / 1_000_000_000) "
                        + "(Unix time): two primaries never share an export; stop that one, or take over on this export's host"
                )
            }
            header = ExportHeader(
                layout: layout, owner: owner, generation: current.generation, sequence: current.sequence)
        }
        self.device = device
        self.name = name
        self.layout = layout
        self.applier = applier
        record = .allocate(byteCount: layout.recordBytes, alignment: ExportLayout.blockSize)
        extents = .allocate(capacity: max(layout.journalFrames, 1))
    }

    deinit {
        record.deallocate()
        extents.deallocate()
    }

    /// What the export's header slots hold.
    enum Found {
        /// Nothing yet (zeros): a new export.
        case blank
        /// Data that is not a mirrord header.
        case foreign
        /// The current header.
        case header(ExportHeader)
    }

    /// Reads both header slots: the valid one with the higher sequence, or what else is there.
    static func readHeader(_ device: any ExportDevice, name: String) throws(ExportError) -> Found {
        let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * ExportLayout.blockSize, alignment: 8)
        defer { blocks.deallocate() }
        try device.read(into: blocks, at: 0)
        let slots = (0..<2).map { slot in
            UnsafeRawBufferPointer(
                rebasing: blocks[slot * ExportLayout.blockSize..<(slot + 1) * ExportLayout.blockSize])
        }
        if let newest = slots.compactMap(ExportHeader.decode).max(by: { $0.sequence < $1.sequence }) {
            return .header(newest)
        }
        if slots.contains(where: ExportHeader.hasMagic) { return .header(try torn(name)) }
        return blocks.allSatisfy { $0 == 0 } ? .blank : .foreign
    }

    private static func torn(_ name: String) throws(ExportError) -> ExportHeader {
        throw ExportError(.notMirrord, "open \(name)", "both of the export's header slots are damaged")
    }

    /// Starts a sync from scratch: a new generation (every commit record before it is stale from
    /// now on), this primary as the owner, written durably before any frame is written in place.
    ///
    /// With a standby, nothing more is written until it acknowledges the new generation in its
    /// mark: it first finishes the previous generation's committed epochs, so that none of their
    /// frames lands over the new sync's (the image's one writer at a time). A standby that does not
    /// answer within its patience fails the sync (`standbyBehind`), changing nothing but the header.
    package func beginSync() throws(ExportError) {
        broken = nil
        try guarded { () throws(ExportError) in try startSync() }
    }

    private func startSync() throws(ExportError) {
        // The wall clock of the sync's start (nanoseconds), and past every earlier generation of
        // this export even if the clock stepped back: a later sync has a larger generation whichever
        // host's export it went to, so that two exports' newest committed epochs can be compared
        // by (generation, epoch) (``ExportProbe/position``; the hosts' clocks kept in step by NTP).
        // After a takeover, past the taken-over export's too: causally later, with no clock's help.
        header.generation = max(header.generation + 1, generationFloor + 1, Self.wallClock())
        header.sequence += 1
        if case .standby = applier { header.standbyApplies = true } else { header.standbyApplies = false }
        committedEpoch = 0
        firstEpoch = 0
        leftInJournal = 0
        try writeHeader()
        if case .standby(let patience, let pause) = applier {
            guard try awaitMark(0, patience: patience, pause: pause) != nil else {
                throw ExportError(
                    .standbyBehind, "begin a sync on \(name)",
                    "the standby on the spare host did not acknowledge the new sync (generation \(header.generation)) in "
                        + "time: is `mirrord standby` running on the export's file, beside its NBD server?")
            }
        }
    }

    /// The time now, Unix time in nanoseconds.
    private static func wallClock() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Writes the header to its slot, durably.
    private func writeHeader() throws(ExportError) {
        try device.write(header.encoded(), at: layout.headerOffset(slot: header.slot), durable: true)
    }

    /// Writes the contiguous `frames` of `memory` (frame `f` at `memory + f × frameSize`) in
    /// place in the image: the full copy. Not journalled: until the first commit of this sync
    /// the export holds no image to take over.
    package func writeInPlace(frames: Range<Int>, of memory: UnsafeRawPointer) throws(ExportError) {
        try guarded { () throws(ExportError) in try writeRun(frames, of: memory) }
    }

    private func writeRun(_ frames: Range<Int>, of memory: UnsafeRawPointer) throws(ExportError) {
        guard !frames.isEmpty else { return }
        extents[0] = ExportExtent(
            source: memory + frames.lowerBound * layout.frameSize, length: frames.count * layout.frameSize,
            offset: layout.imageOffset(frame: frames.lowerBound))
        try device.write(UnsafeBufferPointer(rebasing: extents[0..<1]), durable: false)
    }

    /// Writes the listed frames of `memory` in place in the image: a pass of the sync.
    package func writeInPlace(frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(ExportError) {
        try guarded { () throws(ExportError) in try writeList(frameList, of: memory) }
    }

    private func writeList(_ frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(ExportError) {
        var start = 0
        while start < frameList.count {
            let batch = min(extents.count, frameList.count - start)
            for i in 0..<batch {
                let frame = Int(frameList[start + i])
                extents[i] = ExportExtent(
                    source: memory + frame * layout.frameSize, length: layout.frameSize,
                    offset: layout.imageOffset(frame: frame))
            }
            try device.write(UnsafeBufferPointer(rebasing: extents[0..<batch]), durable: false)
            start += batch
        }
    }

    /// Commits epoch `epoch`: the frames `frameList` (at most `layout.journalFrames`), whose
    /// contents are in `staged` one after another, as the pause copied them. With the primary
    /// applying, its frames are then put in place, unless not `inPlace` (the last epoch of a clean
    /// stop: nothing is committed after it, and recovery replays the newest epochs from their
    /// halves), or until `cutShort` says so between batches (a clean stop that began while this
    /// epoch was committed: its last epoch follows, and recovery replays both). Refused, writing
    /// nothing, when the epoch's journal half holds an epoch left there, not in place.
    package func commit(
        epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer, inPlace: Bool = true,
        cutShort: () -> Bool = { false }
    ) throws(ExportError) {
        try guarded { () throws(ExportError) in
            try ship(epoch, frameList, staged, inPlace: inPlace, cutShort: cutShort)
        }
    }

    private func ship(
        _ epoch: UInt64, _ frameList: UnsafeBufferPointer<UInt32>, _ staged: UnsafeRawPointer, inPlace: Bool,
        cutShort: () -> Bool
    ) throws(ExportError) {
        precondition(frameList.count <= layout.journalFrames, "an epoch larger than the journal half")
        precondition(epoch > committedEpoch, "epochs are committed in order")
        let half = Int(epoch % 2)
        let frameSize = layout.frameSize
        let count = frameList.count
        // 0. The half's previous epoch must be in place, and stable, before its frames are overwritten.
        let applied: UInt64
        switch applier {
        case .primary:
            // In place since its commit, stable at step 2's flush; unless left in the journal.
            if leftInJournal != 0 && leftInJournal + 2 <= epoch {
                throw ExportError(
                    .leftInJournal, "commit epoch \(epoch) to \(name)",
                    "its journal half holds epoch \(leftInJournal), which was left there and not put in place")
            }
            applied = leftInJournal != 0 ? leftInJournal - 1 : epoch - 1
        case .standby:
            // The half's previous epoch: of this sync, in place once the mark says so; of the
            // previous one (this sync's first two epochs), in place since the acknowledgement.
            if firstEpoch == 0 { firstEpoch = epoch }
            applied = epoch >= firstEpoch + 2 ? try ensureApplied(epoch - 2) : 0
        }
        // 1. The frames into the journal half, each with its checksum in the record.
        for i in 0..<count {
            let source = staged + i * frameSize
            extents[i] = ExportExtent(
                source: source, length: frameSize, offset: layout.journalOffset(half: half, index: i))
            EpochRecord.setEntry(i, frame: frameList[i], checksum: mirrord_crc32c(0, source, frameSize), in: record)
        }
        try device.write(UnsafeBufferPointer(rebasing: extents[0..<count]), durable: false)
        // 2. A flush: the journal's frames, and the previous epoch's frames in place, are stable.
        try device.flush()
        // 3. The commit record, durably: from its completion on, the epoch is committed.
        let sealed = EpochRecord(generation: header.generation, epoch: epoch, count: count, appliedThrough: applied)
        sealed.seal(record)
        try device.write(
            UnsafeRawBufferPointer(rebasing: record[0..<sealed.encodedBytes]), at: layout.recordOffset(half: half),
            durable: true)
        committedEpoch = epoch
        guard case .primary = applier else { return }
        // 4. The frames in place (stable at the next epoch's flush), a batch at a time, unless
        // left in the journal: a later commit's record then says which epochs to replay.
        var start = 0
        while start < count {
            guard inPlace, leftInJournal == 0, !cutShort() else {
                if leftInJournal == 0 { leftInJournal = epoch }
                return
            }
            let batch = min(inPlaceBatchFrames, count - start)
            for i in start..<(start + batch) {
                extents[i] = ExportExtent(
                    source: staged + i * frameSize, length: frameSize,
                    offset: layout.imageOffset(frame: Int(frameList[i])))
            }
            try device.write(UnsafeBufferPointer(rebasing: extents[start..<(start + batch)]), durable: false)
            start += batch
        }
    }

    /// With a standby: waits (as ``Applier`` says) for its mark that `epoch` is in place; returns
    /// the newest epoch the mark names.
    private func ensureApplied(_ epoch: UInt64) throws(ExportError) -> UInt64 {
        guard case .standby(let patience, let pause) = applier else { return epoch }
        if let applied = try awaitMark(epoch, patience: patience, pause: pause) { return applied }
        throw ExportError(
            .standbyBehind, "ship epoch \(epoch + 2) to \(name)",
            "the standby on the spare host has not put epoch \(epoch) in place (its journal half is needed again)")
    }

    /// Reads the standby's mark up to `patience` times, calling `pause` between reads, until it
    /// names this sync's generation and `epoch` or a later one in place; returns that epoch, or
    /// nil when it never did.
    private func awaitMark(_ epoch: UInt64, patience: Int, pause: () -> Void) throws(ExportError) -> UInt64? {
        for attempt in 0..<max(1, patience) {
            if let mark = try ExportStatus.read(device, layout: layout), mark.generation == header.generation,
                mark.appliedEpoch >= epoch
            {
                return mark.appliedEpoch
            }
            if attempt + 1 < patience { pause() }
        }
        return nil
    }

    /// The newest epoch whose frames were all in place in the image when this was called: the
    /// last committed one when the primary puts them in place (but the one before an epoch left
    /// in the journal by a clean stop), the standby's mark otherwise (a frame of a later epoch may
    /// still hold older contents). What a read-back of the image that begins after it may be
    /// compared against.
    package func imageEpoch() throws(ExportError) -> UInt64 {
        guard case .standby = applier else { return leftInJournal != 0 ? leftInJournal - 1 : committedEpoch }
        guard let mark = try ExportStatus.read(device, layout: layout), mark.generation == header.generation else {
            return 0
        }
        return min(mark.appliedEpoch, committedEpoch)
    }

    /// Makes everything written stable (a clean stop after the last epoch).
    package func flush() throws(ExportError) {
        try guarded { () throws(ExportError) in try device.flush() }
    }

    /// Runs `body` unless an earlier write failed; a failure of its own (but a standby behind,
    /// which writes nothing) leaves the journal refusing until a new sync.
    private func guarded(_ body: () throws(ExportError) -> Void) throws(ExportError) {
        if let broken {
            throw ExportError(
                broken.kind, broken.operation, "an earlier write failed (\(broken.reason)); a new sync must start")
        }
        do {
            try body()
        } catch {
            if error.kind != .standbyBehind { broken = error }
            throw error
        }
    }
}
