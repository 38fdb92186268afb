/// The block storage that holds the spare on another host: an NBD export reached over the
/// network, or, on the backup host itself, the image file behind its `nbd-server`.
///
/// The epoch journal (``EpochJournal``) and the takeover (``ExportRecovery``) need only these
/// calls, so that both run on either, and a test can give a device that loses writes the way a
/// host failure does.
package protocol ExportDevice: AnyObject, Sendable {
    /// Bytes the device holds.
    var size: UInt64 { get }

    /// Reads `buffer.count` bytes at `offset`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError)

    /// Writes each extent; `durable` makes them stable before the call returns (NBD's FUA), else
    /// they become stable at the next ``flush()``. An implementation may keep many in flight; it
    /// returns once all have completed, and throws the first that failed.
    func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError)

    /// Makes every write completed so far stable.
    func flush() throws(ExportError)

    /// Reads a large range (a takeover's whole image) as fast as the device can: an NBD export
    /// keeps many requests in flight. The default is ``read(into:at:)``.
    func readBulk(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError)
}

extension ExportDevice {
    package func readBulk(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        try read(into: buffer, at: offset)
    }
}

extension ExportDevice {
    /// Writes `bytes` at `offset`.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(ExportError) {
        guard let base = bytes.baseAddress else { return }
        var extent = ExportExtent(source: base, length: bytes.count, offset: offset)
        try withUnsafePointer(to: &extent) { (pointer) throws(ExportError) in
            try write(UnsafeBufferPointer(start: pointer, count: 1), durable: durable)
        }
    }

    /// Writes the whole of `bytes` at `offset` (a header, a block).
    package func write(_ bytes: [UInt8], at offset: UInt64, durable: Bool) throws(ExportError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ExportError) in try write(raw, at: offset, durable: durable) }
        }
        try result.get()
    }
}
