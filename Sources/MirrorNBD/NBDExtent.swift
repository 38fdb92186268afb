/// A range of bytes to copy: `length` bytes at `offset`, the same offset in the source memory and
/// (after the writer's base) in the export, since the spare mirrors the active memory byte for byte.
package struct NBDExtent: Hashable, Sendable {
    /// The first byte's offset in the source memory.
    package var offset: Int
    /// How many bytes.
    package var length: Int

    /// The extent of `length` bytes at `offset`.
    package init(offset: Int, length: Int) {
        self.offset = offset
        self.length = length
    }
}
