/// What an export holds, read without writing a byte: its header, the valid commit records of its
/// current sync, and which of them are not yet in place in the image. A takeover
/// (``ExportRecovery``) replays from it; `mirrord probe` prints it, so that a cluster manager can
/// tell which of two exports holds the newest committed epoch before it picks the host to run on.
///
/// Reading an export that a primary is writing (through the NBD server in front of its file) is
/// safe: the header slots and each commit record carry a CRC-32C, so a torn or half-written one
/// reads as absent, and the probe then reports the other half's epoch, the one before. It is a
/// snapshot: a primary still running commits newer epochs after it.
package struct ExportProbe: Sendable, Hashable {
    /// A valid commit record, and the journal half it is in.
    package struct Committed: Sendable, Hashable {
        /// The journal half (0 or 1).
        package var half: Int
        /// The record.
        package var record: EpochRecord

        /// The record `record` in half `half`.
        package init(half: Int, record: EpochRecord) {
            self.half = half
            self.record = record
        }
    }

    /// The header; nil for a blank export (zeros: nothing was ever replicated to it).
    package var header: ExportHeader?
    /// The valid commit records of the header's sync generation, oldest epoch first; records of
    /// another generation are stale and never count.
    package var committed: [Committed]
    /// The epochs of ``committed`` not yet in place in the image (past the newest record's
    /// `appliedThrough` and the standby's mark), oldest first: what a takeover replays.
    package var pending: [Committed]

    /// The probe of the given values.
    package init(header: ExportHeader?, committed: [Committed] = [], pending: [Committed] = []) {
        self.header = header
        self.committed = committed
        self.pending = pending
    }

    /// The newest committed epoch of the current sync, or nil when there is none (a blank export,
    /// or a primary that died before its sync's first commit).
    package var newest: EpochRecord? { committed.last?.record }

    /// The export's state as a pair that orders exports by how recent their committed memory is:
    /// the sync generation (the wall clock of the sync's start, in nanoseconds, so that a later
    /// sync, to either host's export, has a larger one), then the epoch. nil without a committed
    /// epoch, which is older than any.
    package var position: Position? {
        guard let header, let newest else { return nil }
        return Position(generation: header.generation, epoch: newest.epoch)
    }

    /// A committed epoch's place in time: compared by generation, then epoch.
    package struct Position: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The sync generation.
        package var generation: UInt64
        /// The epoch.
        package var epoch: UInt64

        /// The position of epoch `epoch` of sync `generation`.
        package init(generation: UInt64, epoch: UInt64) {
            self.generation = generation
            self.epoch = epoch
        }

        package static func < (lhs: Position, rhs: Position) -> Bool {
            (lhs.generation, lhs.epoch) < (rhs.generation, rhs.epoch)
        }

        /// `"generation 1765…, epoch 42"`.
        package var description: String { "generation \(generation), epoch \(epoch)" }
    }

    /// Reads the export on `device` (named `name`; `operation` heads the errors, e.g. `"probe"`,
    /// `"take over"`): its header, its current sync's valid commit records and which are pending.
    /// Writes nothing. Throws `notMirrord` when the export holds data that is not mirrord's or both
    /// header slots are damaged, `tooSmall` when it is smaller than its header says, `io` when it
    /// cannot be read.
    package static func read(
        _ device: any ExportDevice, name: String, operation: String = "probe"
    ) throws(ExportError) -> ExportProbe {
        let header: ExportHeader
        switch try EpochJournal.readHeader(device, name: name) {
        case .blank: return ExportProbe(header: nil)
        case .foreign:
            throw ExportError(
                .notMirrord, "\(operation) \(name)",
                "the export holds data that is not mirrord's (no mirrord header in its first 8 KiB)")
        case .header(let found): header = found
        }
        let layout = header.layout
        guard device.size >= layout.requiredBytes else {
            throw ExportError(
                .tooSmall, "\(operation) \(name)",
                "the export has \(device.size) bytes; its header says \(layout.requiredBytes)")
        }
        // Records only: no frame is read.
        let replay = EpochReplay(device: device, name: name, layout: layout, batchFrames: 1)
        let found = try replay.committed(generation: header.generation)
        let pending = try replay.pending(of: found, generation: header.generation)
        return ExportProbe(
            header: header, committed: found.map { Committed(half: $0.half, record: $0.record) },
            pending: pending.map { Committed(half: $0.half, record: $0.record) })
    }
}
