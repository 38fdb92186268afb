/// One write of a scattered batch: `length` bytes from `source`, anywhere in this process, to
/// `offset` of the export. An epoch's staged frames, contiguous in the staging area, go to places
/// scattered over the image: a batch of these says so without a copy.
///
/// `@unchecked Sendable`: it carries a pointer, which the caller keeps valid and unchanged until the
/// write returns; the writer only reads through it.
package struct NBDWrite: @unchecked Sendable {
    /// Where the bytes are; valid until the write returns.
    package var source: UnsafeRawPointer
    /// How many bytes.
    package var length: Int
    /// Where on the export they go.
    package var offset: UInt64

    /// A write of `length` bytes from `source` to `offset`.
    package init(source: UnsafeRawPointer, length: Int, offset: UInt64) {
        self.source = source
        self.length = length
        self.offset = offset
    }
}
