/// The takeover's side of the export: brings its image to exactly the last committed epoch.
///
/// It reads the header, finds the newest valid commit record of the header's sync generation,
/// checks each of that epoch's journalled frames against its checksum, writes them in place and
/// flushes (or leaves the flush to its caller). Replaying an epoch whose frames were already in
/// place changes nothing, so a takeover that is itself interrupted can simply run again.
package enum ExportRecovery {
    /// What a recovery found and did.
    package struct Outcome: Sendable, Hashable {
        /// The epoch the image now holds.
        package var epoch: UInt64
        /// The sync generation it belongs to.
        package var generation: UInt64
        /// Frames copied from the journal into the image.
        package var framesReplayed: Int
        /// The primary that owned the export.
        package var previousOwner: ExportOwner
        /// The layout read from the header.
        package var layout: ExportLayout
    }

    /// The export's current header, read and nothing written: what a takeover checks against the
    /// configuration before it changes anything. Throws `notMirrord` when there is none.
    package static func header(of device: any ExportDevice, name: String) throws(ExportError) -> ExportHeader {
        guard case .header(let header) = try EpochJournal.readHeader(device, name: name) else {
            throw ExportError(
                .notMirrord, "take over \(name)", "the export has no mirrord header: nothing was replicated to it")
        }
        return header
    }

    /// Brings the image on `device` (named `name`) to the last committed epoch, replaying every
    /// committed epoch not yet in place (written oldest first; a frame of two from the newer
    /// only); with `newOwner`, writes it into the header
    /// too (both durable on return, unless not `durable`: then the caller flushes the device), so
    /// that the former primary is refused if it comes back to this export and no standby writes
    /// the image any more. Reads `batchFrames` journalled frames at a time (nil: 16 MiB's worth).
    /// Throws, naming what is wrong, when there is no mirrord header, no committed epoch of the
    /// current sync, or a journalled frame that fails its checksum (nothing is then written).
    package static func recover(
        _ device: any ExportDevice, name: String, newOwner: ExportOwner? = nil, durable: Bool = true,
        batchFrames: Int? = nil
    ) throws(ExportError) -> Outcome {
        // What to replay is what a probe finds (one reading of the export for both).
        let probe = try ExportProbe.read(device, name: name, operation: "take over")
        guard var header = probe.header else {
            throw ExportError(
                .notMirrord, "take over \(name)", "the export has no mirrord header: nothing was replicated to it")
        }
        let layout = header.layout
        guard let newest = probe.newest else {
            throw ExportError(
                .noCommittedEpoch, "take over \(name)",
                "the export holds no committed epoch of its current sync (generation \(header.generation)): the primary "
                    + "stopped before its first epoch committed, during the full copy or the passes")
        }
        let replay = EpochReplay(
            device: device, name: name, layout: layout, batchFrames: batchFrames ?? EpochReplay.defaultBatchFrames)
        // Every epoch checked before any is written: a damaged journal changes nothing. Epochs that
        // fit a batch together (the usual one or two: a clean stop leaves two) are each read once,
        // all checked before a frame is written; larger ones are checked in a first read.
        if probe.pending.reduce(0, { $0 + $1.record.count }) <= replay.batchFrames {
            try replay.apply(probe.pending.map { ($0.half, $0.record) }, operation: "take over")
        } else {
            for pending in probe.pending {
                try replay.apply(pending.record, half: pending.half, operation: "take over", checkOnly: true)
            }
            for pending in probe.pending {
                try replay.apply(pending.record, half: pending.half, operation: "take over")
            }
        }
        let previous = header.owner
        if let newOwner {
            header.owner = newOwner
            // The image is the new owner's machine now: a standby must not put epochs in place.
            header.standbyApplies = false
            header.sequence += 1
            try device.write(header.encoded(), at: layout.headerOffset(slot: header.slot), durable: false)
        }
        // One flush makes the replayed frames and the new owner stable together. Either may reach
        // the disk first: a takeover stopped in between finds the same records and replays them
        // again (the new owner changes no record, nor what is pending). So may one stopped before
        // the flush: a caller may flush later (not `durable`).
        if durable { try device.flush() }
        return Outcome(
            epoch: newest.epoch, generation: header.generation,
            framesReplayed: probe.pending.reduce(0) { $0 + $1.record.count },
            previousOwner: previous, layout: layout)
    }
}
