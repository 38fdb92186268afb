/// Little-endian fields into a byte array, for the export's header and commit records.
struct ByteWriter {
    /// The bytes written so far (and any beyond, untouched).
    private(set) var bytes: [UInt8]
    private var offset = 0

    /// A writer over `bytes`, from their start.
    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Moves to `offset`.
    mutating func seek(_ offset: Int) { self.offset = offset }

    /// Appends `value`, little-endian.
    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { bytes[offset + i] = byte }
        }
        offset += MemoryLayout<T>.size
    }

    /// Appends `text` as UTF-8 in exactly `count` bytes: cut, and NUL-padded.
    mutating func put(text: String, bytes count: Int) {
        for (i, byte) in text.utf8.prefix(count).enumerated() { bytes[offset + i] = byte }
        offset += count
    }
}

/// Little-endian fields out of raw bytes, for the export's header and commit records.
struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    /// A reader over `bytes`, from their start.
    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The next 32-bit field.
    mutating func u32() -> UInt32 { next(UInt32.self) }

    /// The next 64-bit field.
    mutating func u64() -> UInt64 { next(UInt64.self) }

    /// The next `count` bytes as text, up to the first NUL.
    mutating func text(bytes count: Int) -> String {
        let field = bytes[offset..<offset + count]
        offset += count
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    private mutating func next<T: FixedWidthInteger>(_ type: T.Type) -> T {
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
