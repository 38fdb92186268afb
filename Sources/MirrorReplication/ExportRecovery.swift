import CMirrorShims

/// The takeover's side of the export: brings its image to exactly the last committed epoch.
///
/// It reads the header, finds the newest valid commit record of the header's sync generation,
/// checks each of that epoch's journalled frames against its checksum, writes them in place and
/// flushes. Replaying an epoch whose frames were already in place changes nothing, so a takeover
/// that is itself interrupted can simply run again.
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

    /// Frames read and checked at a time.
    static let batchFrames = 1_024

    /// Brings the image on `device` (named `name`) to the last committed epoch; with `newOwner`,
    /// writes it into the header afterwards (durably), so that the former primary is refused if
    /// it comes back to this export. Throws, naming what is wrong, when there is no mirrord
    /// header, no committed epoch of the current sync, or a journalled frame that fails its
    /// checksum (nothing is then written).
    package static func recover(
        _ device: any ExportDevice, name: String, newOwner: ExportOwner? = nil
    ) throws(ExportError) -> Outcome {
        guard case .header(var header) = try EpochJournal.readHeader(device, name: name) else {
            throw ExportError(
                .notMirrord, "take over \(name)", "the export has no mirrord header: nothing was replicated to it")
        }
        let layout = header.layout
        guard device.size >= layout.requiredBytes else {
            throw ExportError(
                .tooSmall, "take over \(name)",
                "the export has \(device.size) bytes; its header says \(layout.requiredBytes)")
        }
        let record = UnsafeMutableRawBufferPointer.allocate(
            byteCount: layout.recordBytes, alignment: ExportLayout.blockSize)
        defer { record.deallocate() }
        var newest: (half: Int, record: EpochRecord)?
        for half in 0..<2 {
            try device.read(into: record, at: layout.recordOffset(half: half))
            guard let found = EpochRecord.decode(UnsafeRawBufferPointer(record), capacity: layout.journalFrames),
                found.generation == header.generation
            else { continue }
            if newest.map({ found.epoch > $0.record.epoch }) ?? true { newest = (half, found) }
        }
        guard let (half, committed) = newest else {
            throw ExportError(
                .noCommittedEpoch, "take over \(name)",
                "the export holds no committed epoch of its current sync (generation \(header.generation)): the primary "
                    + "stopped before its first epoch committed, during the full copy or the passes")
        }
        // The chosen record again: the loop may have read the other half last.
        try device.read(into: record, at: layout.recordOffset(half: half))
        let frames = UnsafeMutableRawBufferPointer.allocate(
            byteCount: batchFrames * layout.frameSize, alignment: ExportLayout.blockSize)
        let extents = UnsafeMutableBufferPointer<ExportExtent>.allocate(capacity: batchFrames)
        defer {
            frames.deallocate()
            extents.deallocate()
        }
        // Every frame is checked before any is written: a corrupt journal changes nothing.
        for pass in [false, true] {
            var start = 0
            while start < committed.count {
                let batch = min(batchFrames, committed.count - start)
                let bytes = UnsafeMutableRawBufferPointer(rebasing: frames[0..<batch * layout.frameSize])
                try device.read(into: bytes, at: layout.journalOffset(half: half, index: start))
                for i in 0..<batch {
                    let entry = EpochRecord.entry(start + i, in: UnsafeRawBufferPointer(record))
                    let source = UnsafeRawPointer(frames.baseAddress! + i * layout.frameSize)
                    if !pass {
                        guard entry.frame < layout.frameCount,
                            mirrord_crc32c(0, source, layout.frameSize) == entry.checksum
                        else {
                            throw ExportError(
                                .corrupt, "take over \(name)",
                                "frame \(entry.frame) of committed epoch \(committed.epoch) does not match its checksum "
                                    + "in the journal: the export was damaged after the commit; nothing was replayed")
                        }
                    } else {
                        extents[i] = ExportExtent(
                            source: source, length: layout.frameSize,
                            offset: layout.imageOffset(frame: Int(entry.frame)))
                    }
                }
                if pass { try device.write(UnsafeBufferPointer(rebasing: extents[0..<batch]), durable: false) }
                start += batch
            }
        }
        try device.flush()
        let previous = header.owner
        if let newOwner {
            header.owner = newOwner
            header.sequence += 1
            try device.write(header.encoded(), at: layout.headerOffset(slot: header.slot), durable: true)
        }
        return Outcome(
            epoch: committed.epoch, generation: header.generation, framesReplayed: committed.count,
            previousOwner: previous, layout: layout)
    }
}
