import CMirrorShims

/// The export's header: what it is (magic, version, the layout), who owns it, and which sync
/// generation its commit records belong to. Written in two slots in turn (the valid one with the
/// higher `sequence` wins), each with a CRC-32C, so that a header torn by a host failure leaves
/// the other slot standing.
package struct ExportHeader: Sendable, Hashable {
    /// `"MIRRORDX"`: the export is mirrord's.
    static let magic: UInt64 = 0x5844_524F_5252_494D
    /// This layout's version.
    static let version: UInt32 = 1

    /// The layout it describes.
    package var layout: ExportLayout
    /// Which primary replicates to it.
    package var owner: ExportOwner
    /// Names every (re)sync from scratch: the wall clock of its start (Unix time, nanoseconds; at
    /// least the previous one + 1), so that a later sync has a larger one on either host's export.
    /// Commit records of another generation are stale (the image was rewritten in place since), and
    /// never replayed.
    package var generation: UInt64
    /// Counts header writes; the slot with the higher one is current.
    package var sequence: UInt64
    /// Whether the standby on the backup host puts the epochs in place (the primary does not); a
    /// standby applies nothing otherwise, so that the image never has two writers.
    package var standbyApplies: Bool

    /// A header of the given values.
    package init(
        layout: ExportLayout, owner: ExportOwner, generation: UInt64, sequence: UInt64, standbyApplies: Bool = false
    ) {
        self.layout = layout
        self.owner = owner
        self.generation = generation
        self.sequence = sequence
        self.standbyApplies = standbyApplies
    }

    /// The slot this header is written to.
    package var slot: Int { Int(sequence % 2) }

    /// The header as its block: little-endian fields, the checksum in the last four bytes.
    package func encoded() -> [UInt8] {
        var block = [UInt8](repeating: 0, count: ExportLayout.blockSize)
        var writer = ByteWriter(bytes: block)
        writer.put(Self.magic)
        writer.put(Self.version)
        writer.put(UInt32(layout.frameSize))
        writer.put(UInt64(layout.frameCount))
        writer.put(UInt64(layout.journalFrames))
        writer.put(generation)
        writer.put(sequence)
        writer.put(owner.since)
        writer.put(UInt32(bitPattern: owner.pid))
        writer.put(UInt32(standbyApplies ? 1 : 0))
        writer.put(text: owner.machineID, bytes: ExportOwner.fieldBytes)
        writer.put(text: owner.hostname, bytes: ExportOwner.fieldBytes)
        block = writer.bytes
        let crc = block.withUnsafeBytes { mirrord_crc32c(0, $0.baseAddress, ExportLayout.blockSize - 4) }
        writer.seek(ExportLayout.blockSize - 4)
        writer.put(crc)
        return writer.bytes
    }

    /// The header in `block`, or nil when the block is not a valid header (never written, torn,
    /// or something else's); `notMirrord` is set when it holds data that is not a header at all.
    package static func decode(_ block: UnsafeRawBufferPointer) -> ExportHeader? {
        guard block.count >= ExportLayout.blockSize else { return nil }
        var reader = ByteReader(bytes: block)
        guard reader.u64() == magic, reader.u32() == version else { return nil }
        let stored = block.loadUnaligned(fromByteOffset: ExportLayout.blockSize - 4, as: UInt32.self)
        guard mirrord_crc32c(0, block.baseAddress, ExportLayout.blockSize - 4) == UInt32(littleEndian: stored) else {
            return nil
        }
        let frameSize = Int(reader.u32())
        let frameCount = Int(reader.u64())
        let journalFrames = Int(reader.u64())
        let generation = reader.u64()
        let sequence = reader.u64()
        let since = reader.u64()
        let pid = Int32(bitPattern: reader.u32())
        let standbyApplies = reader.u32() == 1
        let machineID = reader.text(bytes: ExportOwner.fieldBytes)
        let hostname = reader.text(bytes: ExportOwner.fieldBytes)
        return ExportHeader(
            layout: ExportLayout(frameSize: frameSize, frameCount: frameCount, journalFrames: journalFrames),
            owner: ExportOwner(machineID: machineID, hostname: hostname, pid: pid, since: since),
            generation: generation, sequence: sequence, standbyApplies: standbyApplies)
    }

    /// Whether `block` starts with the header's magic (mirrord's, though perhaps torn).
    static func hasMagic(_ block: UnsafeRawBufferPointer) -> Bool {
        block.count >= 8 && UInt64(littleEndian: block.loadUnaligned(as: UInt64.self)) == magic
    }
}
