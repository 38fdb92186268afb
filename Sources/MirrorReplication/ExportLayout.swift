/// Where everything lives on the export (docs/design/remote.md): two header slots, the applied
/// mark (``ExportStatus``), the memory image frame by frame, and the epoch journal in two halves,
/// each a commit record area followed by the frames of one epoch.
///
/// Epoch `n` uses half `n % 2`, so the last committed epoch's frames are never overwritten by the
/// next epoch's: whatever moment the primary dies, the newer of the two halves' valid records
/// can be replayed whole.
package struct ExportLayout: Sendable, Hashable {
    /// The unit of every area: one 4 KiB block.
    package static let blockSize = 4_096
    /// Bytes of a frame.
    package let frameSize: Int
    /// Frames of memory in the image.
    package let frameCount: Int
    /// Frames one epoch may ship (`remote.staging` / frame size): each half holds that many.
    package let journalFrames: Int

    /// The layout for memory of `frameCount` frames of `frameSize` bytes and epochs of at most
    /// `journalFrames` frames.
    package init(frameSize: Int, frameCount: Int, journalFrames: Int) {
        self.frameSize = frameSize
        self.frameCount = frameCount
        self.journalFrames = journalFrames
    }

    /// Where header slot `slot` (0 or 1) is.
    package func headerOffset(slot: Int) -> UInt64 { UInt64(slot * Self.blockSize) }

    /// Where the applied mark is: the block after the header slots.
    package var statusOffset: UInt64 { UInt64(2 * Self.blockSize) }

    /// Where the image starts (page-aligned: the file behind an export can be mapped from here).
    package var imageOffset: UInt64 { UInt64(3 * Self.blockSize) }

    /// Where frame `frame` of the image is.
    package func imageOffset(frame: Int) -> UInt64 { imageOffset + UInt64(frame) * UInt64(frameSize) }

    /// Bytes of a commit record with room for every frame of an epoch, in whole blocks.
    package var recordBytes: Int {
        let bytes = EpochRecord.headerBytes + EpochRecord.entryBytes * journalFrames
        return (bytes + Self.blockSize - 1) / Self.blockSize * Self.blockSize
    }

    /// Bytes of one journal half: its record area and its frames.
    package var halfBytes: UInt64 { UInt64(recordBytes) + UInt64(journalFrames) * UInt64(frameSize) }

    /// Where the journal starts, past the image.
    package var journalOffset: UInt64 { imageOffset(frame: frameCount) }

    /// Where the commit record of half `half` (0 or 1) is.
    package func recordOffset(half: Int) -> UInt64 { journalOffset + UInt64(half) * halfBytes }

    /// Where the `index`-th frame of the epoch in half `half` is.
    package func journalOffset(half: Int, index: Int) -> UInt64 {
        recordOffset(half: half) + UInt64(recordBytes) + UInt64(index) * UInt64(frameSize)
    }

    /// The bytes an export needs: headers, image and both journal halves.
    package var requiredBytes: UInt64 { journalOffset + 2 * halfBytes }
}
