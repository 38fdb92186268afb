import CMirrorShims

/// An epoch's commit record: its number, its sync generation, and each frame's number and CRC-32C,
/// in one record whose own checksum tells a whole record from a torn one. A valid record on the
/// export is the epoch's commit: its frames are all in the journal half beside it.
///
/// It also says which epochs were in place, and stable, when it was written (`appliedThrough`):
/// the primary's own applies make that every earlier epoch; with a standby, the newest it had
/// marked. A takeover replays every committed epoch past it, oldest first.
///
/// Layout (little-endian): magic `MIRRORDE` (8), version (4), frame count (4), generation (8),
/// epoch (8), applied through (8), reserved (4), the record's CRC-32C (4, over every other byte it
/// uses), then one entry per frame: frame number (4), the frame's CRC-32C (4).
package struct EpochRecord: Sendable, Hashable {
    static let magic: UInt64 = 0x4544_524F_5252_494D
    static let version: UInt32 = 1
    /// Bytes before the entries.
    package static let headerBytes = 48
    /// Bytes of one entry.
    package static let entryBytes = 8
    private static let checksumOffset = 44

    /// The sync generation the epoch belongs to (the header's when it was committed).
    package var generation: UInt64
    /// The epoch's number.
    package var epoch: UInt64
    /// Frames in the epoch.
    package var count: Int
    /// Every epoch up to this one was in place in the image, and stable, when this was committed.
    package var appliedThrough: UInt64

    /// A record of the given values.
    package init(generation: UInt64, epoch: UInt64, count: Int, appliedThrough: UInt64) {
        self.generation = generation
        self.epoch = epoch
        self.count = count
        self.appliedThrough = appliedThrough
    }

    /// Bytes the record takes with its entries, in whole blocks.
    package var encodedBytes: Int { Self.encodedBytes(count: count) }

    /// Bytes a record of `count` entries takes, in whole blocks.
    static func encodedBytes(count: Int) -> Int {
        let bytes = headerBytes + entryBytes * count
        return (bytes + ExportLayout.blockSize - 1) / ExportLayout.blockSize * ExportLayout.blockSize
    }

    /// Writes the record, with the entries already in `buffer` (``setEntry(_:frame:checksum:in:)``),
    /// and its checksum; the bytes past the entries up to ``encodedBytes`` are zeroed.
    package func seal(_ buffer: UnsafeMutableRawBufferPointer) {
        let end = Self.headerBytes + Self.entryBytes * count
        for i in end..<encodedBytes { buffer[i] = 0 }
        buffer.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt64.self)
        buffer.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
        buffer.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 12, as: UInt32.self)
        buffer.storeBytes(of: generation.littleEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: epoch.littleEndian, toByteOffset: 24, as: UInt64.self)
        buffer.storeBytes(of: appliedThrough.littleEndian, toByteOffset: 32, as: UInt64.self)
        for i in 40..<Self.headerBytes { buffer[i] = 0 }
        let checksum = Self.checksum(UnsafeRawBufferPointer(buffer), count: count)
        buffer.storeBytes(of: checksum.littleEndian, toByteOffset: Self.checksumOffset, as: UInt32.self)
    }

    /// Puts entry `index` (frame number and its checksum) into `buffer`.
    package static func setEntry(
        _ index: Int, frame: UInt32, checksum: UInt32, in buffer: UnsafeMutableRawBufferPointer
    ) {
        let at = headerBytes + entryBytes * index
        buffer.storeBytes(of: frame.littleEndian, toByteOffset: at, as: UInt32.self)
        buffer.storeBytes(of: checksum.littleEndian, toByteOffset: at + 4, as: UInt32.self)
    }

    /// Entry `index` of the record in `buffer`.
    package static func entry(_ index: Int, in buffer: UnsafeRawBufferPointer) -> (frame: UInt32, checksum: UInt32) {
        let at = headerBytes + entryBytes * index
        return (
            UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt32.self)),
            UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
        )
    }

    /// The record in `buffer`, or nil when it is not a whole, valid record with at most
    /// `capacity` entries (never written, torn, or stale bytes).
    package static func decode(_ buffer: UnsafeRawBufferPointer, capacity: Int) -> EpochRecord? {
        guard buffer.count >= headerBytes else { return nil }
        func u32(_ at: Int) -> UInt32 {
            UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        }
        func u64(_ at: Int) -> UInt64 {
            UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: at, as: UInt64.self))
        }
        guard u64(0) == magic, u32(8) == version else { return nil }
        let count = Int(u32(12))
        guard count <= capacity, headerBytes + entryBytes * count <= buffer.count else { return nil }
        guard u32(checksumOffset) == checksum(buffer, count: count) else { return nil }
        return EpochRecord(generation: u64(16), epoch: u64(24), count: count, appliedThrough: u64(32))
    }

    /// The generation and epoch a record's first bytes claim, unchecked (its checksum covers
    /// every entry): whether a whole read of the record is worth it. nil when `block` does not
    /// begin with a record of this version.
    package static func peek(_ block: UnsafeRawBufferPointer) -> (generation: UInt64, epoch: UInt64)? {
        guard block.count >= headerBytes,
            UInt64(littleEndian: block.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == magic,
            UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == version
        else { return nil }
        return (
            UInt64(littleEndian: block.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
            UInt64(littleEndian: block.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        )
    }

    /// The bytes, in whole blocks, of the record whose first block is `block`, as that block
    /// claims them (unchecked, like ``peek(_:)``): how much of a record area is worth reading.
    /// nil when `block` does not begin with a record of this version.
    package static func claimedBytes(_ block: UnsafeRawBufferPointer) -> Int? {
        guard peek(block) != nil else { return nil }
        let count = Int(UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        return encodedBytes(count: count)
    }

    /// The CRC-32C of the record's bytes but its own checksum field.
    private static func checksum(_ buffer: UnsafeRawBufferPointer, count: Int) -> UInt32 {
        let head = mirrord_crc32c(0, buffer.baseAddress, checksumOffset)
        return mirrord_crc32c(head, buffer.baseAddress! + headerBytes, entryBytes * count)
    }
}
