import Synchronization

/// The backup host's side while the primary replicates: puts each committed epoch in place in the
/// image, from the export's own file and at memory speed, and marks it applied (``ExportStatus``),
/// so that the primary need not send every frame twice over the link.
///
/// An epoch is marked applied only once its frames in place are stable, so a primary that reads
/// the mark may overwrite that epoch's journal half. When the primary begins a new sync, the
/// standby first finishes the previous one's committed epochs, then acknowledges the new
/// generation in the mark; the primary writes nothing in place before that, so the image has one
/// writer at a time. The takeover needs none of this: it replays the newest committed epochs
/// whatever was applied.
package final class ExportStandby: Sendable {
    /// What one ``applyCommitted()`` found and did.
    package struct Pass: Sendable, Hashable {
        /// The sync generation the export's header names (0: no mirrord header yet).
        package var generation: UInt64 = 0
        /// The newest epoch of that generation in place and marked (0: none yet).
        package var appliedEpoch: UInt64 = 0
        /// Epochs put in place by this pass.
        package var epochs = 0
        /// Their frames.
        package var frames = 0
        /// Whether this pass acknowledged a new sync (``generation``).
        package var acknowledged = false
        /// Whether the primary puts the epochs in place itself: the standby then writes nothing.
        package var primaryApplies = false
        /// The export's owner (the primary replicating to it, or the host that took over).
        package var owner: ExportOwner?
    }

    /// The export (on the backup host: the file behind its `nbd-server`).
    package let device: any ExportDevice
    /// Its name in messages.
    package let name: String

    /// The replay of the layout last seen, kept with its buffers from one epoch to the next (an
    /// epoch's 16 MiB taken anew, page by page, every few milliseconds cost a fault a page); its
    /// lock also keeps ``applyCommitted()`` to one caller at a time.
    private let replay = Mutex<EpochReplay?>(nil)

    /// Frames its replay reads and checks at a time (nil: an epoch of the default workload fits).
    private let batchFrames: Int?

    /// A standby applying epochs on `device`, named `name`, reading `batchFrames` frames of an
    /// epoch at a time (nil: enough for an epoch of the default workload; a test makes it smaller).
    package init(device: any ExportDevice, name: String, batchFrames: Int? = nil) {
        self.device = device
        self.name = name
        self.batchFrames = batchFrames
    }

    /// Acknowledges a new sync, then puts every committed epoch not yet marked applied in place,
    /// oldest first, makes them stable and marks the newest. Reads only a few blocks when there is
    /// nothing new. Throws when a journalled frame fails its checksum, or the export cannot be
    /// read or written; an export with no mirrord header yet is waited for (generation 0).
    @discardableResult
    package func applyCommitted() throws(ExportError) -> Pass {
        try replay.withLock { (kept) throws(ExportError) -> Pass in try applyCommitted(keeping: &kept) }
    }

    /// ``applyCommitted()`` with the replay kept from the last call (made anew for a new layout).
    private func applyCommitted(keeping kept: inout EpochReplay?) throws(ExportError) -> Pass {
        var pass = Pass()
        guard case .header(let header) = try EpochJournal.readHeader(device, name: name) else { return pass }
        let layout = header.layout
        pass.generation = header.generation
        pass.owner = header.owner
        pass.primaryApplies = !header.standbyApplies
        // A primary that puts the epochs in place itself must be the image's only writer; so must
        // a takeover's machine (the takeover clears the flag).
        guard header.standbyApplies else { return pass }
        if kept?.layout != layout {
            // The file as opened (and mapped) must hold the layout: an export grown since needs a
            // standby started again.
            guard layout.requiredBytes <= device.size else {
                throw ExportError(
                    .io, "stand by on \(name)",
                    "the export's layout takes \(layout.requiredBytes) bytes, the file had \(device.size) when the standby "
                        + "opened it: start the standby again")
            }
            kept = EpochReplay(
                device: device, name: name, layout: layout, batchFrames: batchFrames ?? EpochReplay.defaultBatchFrames)
        }
        try apply(header, with: kept!, &pass)
        return pass
    }

    /// Acknowledges a new sync of `header`, then puts its committed epochs in place.
    private func apply(_ header: ExportHeader, with replay: borrowing EpochReplay, _ pass: inout Pass)
        throws(ExportError)
    {
        let layout = header.layout
        var mark = try ExportStatus.read(device, layout: layout)
        if mark?.generation != header.generation {
            // A new sync. A primary with a standby writes nothing until acknowledged, so the
            // previous sync's journal is intact: its committed epochs go in place first (again,
            // harmlessly, if its primary applied them itself). Not when a sync the standby never
            // saw committed epochs meanwhile: the image has moved on past that journal.
            if let previous = mark,
                try replay.claims().allSatisfy({ $0.generation <= previous.generation })
            {
                try applyPending(replay, generation: previous.generation, after: previous, &pass)
            }
            mark = ExportStatus(generation: header.generation, appliedEpoch: 0)
            try device.write(mark!.encoded(), at: layout.statusOffset, durable: true)
            pass.acknowledged = true
        }
        pass.appliedEpoch = mark!.appliedEpoch
        try applyPending(replay, generation: header.generation, after: mark!, &pass)
    }

    /// Puts the committed epochs of `generation` past `mark` in place, one flush for them all,
    /// then marks the newest.
    private func applyPending(
        _ replay: borrowing EpochReplay, generation: UInt64, after mark: ExportStatus, _ pass: inout Pass
    ) throws(ExportError) {
        guard try replay.newestClaimed(generation: generation) > mark.appliedEpoch else { return }
        let pending = try replay.pending(generation: generation)
        guard let newest = pending.last else { return }
        for (half, committed) in pending {
            try replay.apply(committed, half: half, operation: "apply epoch \(committed.epoch) on")
            pass.frames += committed.count
        }
        try device.flush()
        try device.write(
            ExportStatus(generation: generation, appliedEpoch: newest.record.epoch).encoded(),
            at: replay.layout.statusOffset, durable: true)
        pass.epochs += pending.count
        if generation == pass.generation { pass.appliedEpoch = newest.record.epoch }
    }
}
