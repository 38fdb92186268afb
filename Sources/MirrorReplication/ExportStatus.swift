import CMirrorShims

/// The applied mark: the newest epoch whose frames are in place in the image, and stable, for the
/// sync generation it names. The standby on the backup host writes it after putting an epoch in
/// place; the primary reads it before it reuses that epoch's journal half.
///
/// Layout (little-endian, one block): magic `MIRRORDA` (8), version (4), reserved (4), generation
/// (8), applied epoch (8), a CRC-32C of the block's other bytes in its last four.
package struct ExportStatus: Sendable, Hashable {
    static let magic: UInt64 = 0x4144_524F_5252_494D
    static let version: UInt32 = 1

    /// The sync generation the mark belongs to.
    package var generation: UInt64
    /// The newest epoch in place and stable.
    package var appliedEpoch: UInt64

    /// A mark of the given values.
    package init(generation: UInt64, appliedEpoch: UInt64) {
        self.generation = generation
        self.appliedEpoch = appliedEpoch
    }

    /// The mark as its block.
    package func encoded() -> [UInt8] {
        var writer = ByteWriter(bytes: [UInt8](repeating: 0, count: ExportLayout.blockSize))
        writer.put(Self.magic)
        writer.put(Self.version)
        writer.put(UInt32(0))
        writer.put(generation)
        writer.put(appliedEpoch)
        let crc = writer.bytes.withUnsafeBytes { mirrord_crc32c(0, $0.baseAddress, ExportLayout.blockSize - 4) }
        writer.seek(ExportLayout.blockSize - 4)
        writer.put(crc)
        return writer.bytes
    }

    /// The mark in `block`, or nil when there is none (never written, torn).
    package static func decode(_ block: UnsafeRawBufferPointer) -> ExportStatus? {
        guard block.count >= ExportLayout.blockSize else { return nil }
        var reader = ByteReader(bytes: block)
        guard reader.u64() == magic, reader.u32() == version else { return nil }
        let stored = UInt32(
            littleEndian: block.loadUnaligned(fromByteOffset: ExportLayout.blockSize - 4, as: UInt32.self))
        guard mirrord_crc32c(0, block.baseAddress, ExportLayout.blockSize - 4) == stored else { return nil }
        _ = reader.u32()
        return ExportStatus(generation: reader.u64(), appliedEpoch: reader.u64())
    }

    /// The mark on `device`, or nil.
    package static func read(_ device: any ExportDevice, layout: ExportLayout) throws(ExportError) -> ExportStatus? {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: ExportLayout.blockSize, alignment: 8)
        defer { block.deallocate() }
        try device.read(into: block, at: layout.statusOffset)
        return decode(UnsafeRawBufferPointer(block))
    }
}
