/// The backup host's side while the primary replicates: puts each committed epoch in place in the
/// image, from the export's own file and at memory speed, and marks it applied (``ExportStatus``),
/// so that the primary need not send every frame twice over the link.
///
/// An epoch is marked applied only once its frames in place are stable, so a primary that reads
/// the mark may overwrite that epoch's journal half. The takeover needs none of this: it replays
/// the newest committed epoch whatever was applied.
package final class ExportStandby: Sendable {
    /// The export (on the backup host: the file behind its `nbd-server`).
    package let device: any ExportDevice
    /// Its name in messages.
    package let name: String

    /// A standby applying epochs on `device`, named `name`.
    package init(device: any ExportDevice, name: String) {
        self.device = device
        self.name = name
    }

    /// Puts every committed epoch not yet marked applied in place, oldest first, each made stable
    /// and then marked; returns the newest applied epoch (0: none of the current sync yet, or a
    /// primary that applies its epochs itself, which this standby then leaves alone).
    /// Throws when the export has no mirrord header, or a journalled frame fails its checksum.
    @discardableResult
    package func applyCommitted() throws(ExportError) -> UInt64 {
        guard case .header(let header) = try EpochJournal.readHeader(device, name: name) else {
            throw ExportError(.notMirrord, "apply epochs on \(name)", "the export has no mirrord header")
        }
        let layout = header.layout
        // A primary that puts the epochs in place itself must be the image's only writer.
        guard header.standbyApplies else { return 0 }
        let mark = try ExportStatus.read(device, layout: layout)
        var applied = mark?.generation == header.generation ? mark?.appliedEpoch ?? 0 : 0
        let replay = EpochReplay(device: device, name: name, layout: layout)
        for (half, committed) in try replay.pending(generation: header.generation) {
            try replay.apply(committed, half: half, operation: "apply epoch \(committed.epoch) on")
            try device.flush()
            try device.write(
                ExportStatus(generation: header.generation, appliedEpoch: committed.epoch).encoded(),
                at: layout.statusOffset, durable: true)
            applied = committed.epoch
        }
        return applied
    }
}
