import MirrorCore

/// A way the real MMU tracks writes over one memory region: what ``RealMMUTracking`` needs to
/// offer the machine the harvest of ``DuplexHardware/harvest(frames:flags:into:)``.
protocol PageWriteMechanism: AnyObject, Sendable {
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
