import MirrorCore

/// Write tracking done by the real MMU over one memory region, whatever the mechanism: what the
/// machine needs to harvest written pages with the semantics of ``DuplexHardware/harvest``.
public protocol PageWriteTracker: AnyObject, Sendable {
    /// Write-protects every page: from now on a store marks its page written.
    func protectAll() throws(HardwareError)
    /// Ends tracking: every page writable; what is recorded afterwards is meaningless until the
    /// next ``protectAll()``.
    func unprotectAll()
    /// Reports and/or clears written pages of `frames`, honouring `output`'s capacity.
    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HardwareError) -> HarvestResult
    /// Pages written since they were last protected.
    func writtenCount() -> Int
}

extension UffdWriteTracker: PageWriteTracker {}
