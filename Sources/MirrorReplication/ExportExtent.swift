/// One write of a batch: `length` bytes from `source` to `offset` on the export.
///
/// A plain value over raw memory (the staging area, a module), so that a batch of thousands of
/// frames is one buffer of these and no per-frame object.
///
/// `@unchecked Sendable`: it carries a pointer, which the caller keeps valid and unchanged until the
/// write returns; the writer only reads through it.
package struct ExportExtent: @unchecked Sendable {
    /// Where the bytes are; valid until the write returns.
    package var source: UnsafeRawPointer
    /// How many bytes.
    package var length: Int
    /// Where on the export they go.
    package var offset: UInt64

    /// An extent of `length` bytes from `source` to `offset`.
    package init(source: UnsafeRawPointer, length: Int, offset: UInt64) {
        self.source = source
        self.length = length
        self.offset = offset
    }
}
