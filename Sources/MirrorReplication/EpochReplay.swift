import CMirrorShims

/// Puts a committed epoch's frames in place from its journal half: the takeover's replay, the
/// standby's apply, and the primary's own when no standby answers. Every frame is checked against
/// its checksum before any is written, so a damaged journal changes nothing.
///
/// Its buffers are allocated once, so that a standby keeps one for every epoch it applies: an
/// epoch that fits in the frame buffer (``batchFrames``) is read once, checked, and written from
/// the very bytes checked; a larger one is read twice, checked in full before the second read
/// writes it.
struct EpochReplay: ~Copyable {
    /// The frames the buffer holds by default (16 MiB): an epoch of the default workload fits.
    static let defaultBatchFrames = 4_096

    let device: any ExportDevice
    let name: String
    let layout: ExportLayout
    /// Frames read and checked at a time (and the epochs replayed together at most).
    let batchFrames: Int
    /// One half's record area, read into.
    private let record: UnsafeMutableRawBufferPointer
    private let frames: UnsafeMutableRawBufferPointer
    private let extents: UnsafeMutableBufferPointer<ExportExtent>
    /// The newest epoch's frames, while an older one is replayed with it.
    private let covered: UnsafeMutableBufferPointer<UInt32>

    /// A replay on `device` (named `name`) laid out as `layout`, reading `batchFrames` frames at a
    /// time (at most two epochs').
    init(device: any ExportDevice, name: String, layout: ExportLayout, batchFrames: Int = defaultBatchFrames) {
        precondition(batchFrames >= 1, "a replay reads at least a frame at a time")
        self.device = device
        self.name = name
        self.layout = layout
        // Two halves' worth at most: the two epochs a clean stop may leave, replayed together.
        self.batchFrames = min(batchFrames, max(1, 2 * layout.journalFrames))
        record = .allocate(byteCount: layout.recordBytes, alignment: ExportLayout.blockSize)
        frames = .allocate(byteCount: self.batchFrames * layout.frameSize, alignment: ExportLayout.blockSize)
        extents = .allocate(capacity: self.batchFrames)
        covered = .allocate(capacity: self.batchFrames)
    }

    deinit {
        record.deallocate()
        frames.deallocate()
        extents.deallocate()
        covered.deallocate()
    }

    /// The committed epochs of `generation` not yet in place, oldest first: those past the newest
    /// record's `appliedThrough` and past the standby's mark, whichever is later. Every one of
    /// them has its journal half intact (a half is reused only once its epoch is in place).
    func pending(generation: UInt64) throws(ExportError) -> [(half: Int, record: EpochRecord)] {
        try pending(of: committed(generation: generation), generation: generation)
    }

    /// The epochs of `found` (``committed(generation:)``'s) not yet in place, oldest first.
    func pending(
        of found: [(half: Int, record: EpochRecord)], generation: UInt64
    ) throws(ExportError) -> [(half: Int, record: EpochRecord)] {
        guard let newest = found.last else { return [] }
        let mark = try ExportStatus.read(device, layout: layout)
        let applied = max(newest.record.appliedThrough, mark?.generation == generation ? mark?.appliedEpoch ?? 0 : 0)
        return found.filter { $0.record.epoch > applied }
    }

    /// The newest epoch of `generation` the two halves' records claim, from their first block
    /// only (unchecked; 0 for none): whether ``committed(generation:)``'s whole reads are worth it.
    func newestClaimed(generation: UInt64) throws(ExportError) -> UInt64 {
        try claims().filter { $0.generation == generation }.map(\.epoch).max() ?? 0
    }

    /// The generation and epoch each half's record claims, from its first block only (unchecked).
    func claims() throws(ExportError) -> [(generation: UInt64, epoch: UInt64)] {
        var found: [(generation: UInt64, epoch: UInt64)] = []
        for half in 0..<2 {
            let block = UnsafeMutableRawBufferPointer(rebasing: record[0..<ExportLayout.blockSize])
            try device.read(into: block, at: layout.recordOffset(half: half))
            if let claim = EpochRecord.peek(UnsafeRawBufferPointer(block)) { found.append(claim) }
        }
        return found
    }

    /// Reads half `half`'s record into ``record`` and returns the bytes read: its first block,
    /// then the blocks its entries take, as many as the first block claims (an epoch's ~1,500
    /// frames take 3 blocks of a record area sized for the whole staging, 129 at 256 MiB). A
    /// record is decoded from those bytes alone; its checksum rejects a claim torn or wrong.
    private func readRecord(half: Int) throws(ExportError) -> UnsafeRawBufferPointer {
        let offset = layout.recordOffset(half: half)
        let block = ExportLayout.blockSize
        try device.read(into: UnsafeMutableRawBufferPointer(rebasing: record[0..<block]), at: offset)
        let claimed = EpochRecord.claimedBytes(UnsafeRawBufferPointer(rebasing: record[0..<block]))
        let bytes = min(record.count, claimed ?? block)
        if bytes > block {
            try device.read(
                into: UnsafeMutableRawBufferPointer(rebasing: record[block..<bytes]), at: offset + UInt64(block))
        }
        return UnsafeRawBufferPointer(rebasing: record[0..<bytes])
    }

    /// The valid commit records of `generation` in the two halves, oldest epoch first.
    func committed(generation: UInt64) throws(ExportError) -> [(half: Int, record: EpochRecord)] {
        var found: [(half: Int, record: EpochRecord)] = []
        for half in 0..<2 {
            if let valid = EpochRecord.decode(try readRecord(half: half), capacity: layout.journalFrames),
                valid.generation == generation
            {
                found.append((half, valid))
            }
        }
        return found.sorted { $0.record.epoch < $1.record.epoch }
    }

    /// Checks every frame of the committed epochs `pending` (oldest first, at most two: the
    /// journal's halves; together at most ``batchFrames``), each read once, then writes them in
    /// place, oldest first; not flushed. A frame the newer epoch holds too is neither checked nor
    /// written from the older: the newer's copy is what the image ends with. Throws `corrupt`, naming the
    /// frame, when one fails its checksum or a record changed meanwhile: nothing is then written.
    func apply(_ pending: [(half: Int, record: EpochRecord)], operation: String) throws(ExportError) {
        precondition(pending.count <= 2, "two journal halves")
        precondition(
            pending.reduce(0) { $0 + $1.record.count } <= batchFrames, "epochs replayed together fit one batch")
        var slot = 0
        var kept = 0
        // The newest epoch's extents are the first `newestExtents`, the older one's follow.
        var newestExtents = 0
        // The newest first: its frames are the ones an older epoch's copies are skipped for.
        for (index, (half, committed)) in pending.enumerated().reversed() {
            guard EpochRecord.decode(try readRecord(half: half), capacity: layout.journalFrames) == committed else {
                throw ExportError(
                    .corrupt, "\(operation) \(name)", "the commit record of epoch \(committed.epoch) changed while read"
                )
            }
            let bytes = UnsafeMutableRawBufferPointer(
                rebasing: frames[slot * layout.frameSize..<(slot + committed.count) * layout.frameSize])
            try device.read(into: bytes, at: layout.journalOffset(half: half, index: 0))
            let newest = index == pending.count - 1
            try check(
                committed, from: 0, count: committed.count, at: slot, extent: &kept, operation: operation,
                partly: false,
                skipping: newest ? nil : UnsafeBufferPointer(rebasing: covered[0..<pending[index + 1].record.count]))
            if newest {
                for i in 0..<committed.count {
                    covered[i] = EpochRecord.entry(i, in: UnsafeRawBufferPointer(record)).frame
                }
                newestExtents = kept
            }
            slot += committed.count
        }
        // Written oldest first, each write done before the next: should a frame of both escape the
        // skip (its lists not ascending), the newer copy still lands last.
        for range in [newestExtents..<kept, 0..<newestExtents] where !range.isEmpty {
            try device.write(UnsafeBufferPointer(rebasing: extents[range]), durable: false)
        }
    }

    /// Checks `count` frames of `committed` from its entry `first`, read into the frame buffer
    /// from slot `slot` on, against the checksums of the record in ``record``, and fills their
    /// extents from index `extent` on (advanced past them), but for the frames in `skipping`
    /// (ascending, as the entries are). Throws `corrupt`, naming the frame (and, unless
    /// `partly`, that nothing was replayed).
    private func check(
        _ committed: EpochRecord, from first: Int, count: Int, at slot: Int, extent: inout Int, operation: String,
        partly: Bool, skipping: UnsafeBufferPointer<UInt32>? = nil
    ) throws(ExportError) {
        var next = 0
        for i in 0..<count {
            let entry = EpochRecord.entry(first + i, in: UnsafeRawBufferPointer(record))
            if let skipping {
                while next < skipping.count && skipping[next] < entry.frame { next += 1 }
                if next < skipping.count && skipping[next] == entry.frame { continue }
            }
            let source = UnsafeRawPointer(frames.baseAddress! + (slot + i) * layout.frameSize)
            if entry.frame >= layout.frameCount || mirrord_crc32c(0, source, layout.frameSize) != entry.checksum {
                throw ExportError(
                    .corrupt, "\(operation) \(name)",
                    "frame \(entry.frame) of committed epoch \(committed.epoch) does not match its checksum "
                        + "in the journal: the export was damaged after the commit"
                        + (partly ? "" : "; nothing was replayed"))
            }
            extents[extent] = ExportExtent(
                source: source, length: layout.frameSize, offset: layout.imageOffset(frame: Int(entry.frame)))
            extent += 1
        }
    }

    /// Checks every frame of `committed` (in `half`), then (unless `checkOnly`) writes them in
    /// place; not flushed. Throws `corrupt`, naming the frame, when one fails its checksum or the
    /// record changed meanwhile (nothing of this epoch is then written).
    func apply(_ committed: EpochRecord, half: Int, operation: String, checkOnly: Bool = false) throws(ExportError) {
        guard EpochRecord.decode(try readRecord(half: half), capacity: layout.journalFrames) == committed else {
            throw ExportError(
                .corrupt, "\(operation) \(name)", "the commit record of epoch \(committed.epoch) changed while read")
        }
        // One batch: every frame is checked before the batch is written. More: a first read checks
        // them all, a second writes them, checked again.
        let passes: [Bool] = checkOnly ? [false] : committed.count <= batchFrames ? [true] : [false, true]
        for writing in passes {
            var start = 0
            while start < committed.count {
                let batch = min(batchFrames, committed.count - start)
                let bytes = UnsafeMutableRawBufferPointer(rebasing: frames[0..<batch * layout.frameSize])
                try device.read(into: bytes, at: layout.journalOffset(half: half, index: start))
                // Checked on both reads: what is written is what was committed, even had the half
                // changed in between.
                var filled = 0
                try check(
                    committed, from: start, count: batch, at: 0, extent: &filled, operation: operation,
                    partly: writing && start > 0)
                if writing { try device.write(UnsafeBufferPointer(rebasing: extents[0..<filled]), durable: false) }
                start += batch
            }
        }
    }
}
