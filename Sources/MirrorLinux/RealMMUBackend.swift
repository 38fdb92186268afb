import MirrorCore

/// Dirty tracking by the processor's own MMU, for a machine whose CPUs store to real memory of
/// this process: hand a case to `EmulatedMachine(options:realMMU:)` (MirrorEmulation), or to any
/// machine that takes a `DirtyTrackingFactory` (MirrorCore), and its
/// `DuplexHardware.harvest(frames:flags:into:)` reports the pages the kernel saw written.
///
/// Public so that a program holding MirrorCore, MirrorEmulation and MirrorLinux can choose the
/// tracker itself; the trackers behind it (the userfaultfd and `mprotect` mechanisms) stay
/// internal, reached only through the `DirtyTracking` this factory makes. Ask
/// ``RealMMUProbe/check()`` first whether ``uffd`` works on this kernel and in this process.
public enum RealMMUBackend: String, DirtyTrackingFactory, CaseIterable {
    /// userfaultfd write-protect in asynchronous mode, harvested with `PAGEMAP_SCAN` (Linux 6.7+):
    /// the kernel resolves each first store to a page by itself, and a harvest is one ioctl that
    /// reports and re-protects the written pages. The backend to use where ``RealMMUProbe/check()``
    /// succeeds.
    case uffd
    /// `mprotect` and a SIGSEGV handler: the classic userspace baseline, for kernels without
    /// asynchronous userfaultfd. One region per process (the handler is process-wide), and it
    /// fails (cleanly, with an error from the harvest) past `vm.max_map_count` scattered written
    /// pages.
    case mprotect

    /// `"uffd"` or `"mprotect"`: the name summaries report as the backend
    /// (`DuplexSummary.backend`).
    public var backendName: String { rawValue }

    /// Registers `[cpuView, cpuView + byteCount)` with the mechanism and returns its tracking,
    /// off until `DirtyTracking.startTracking()`. The region must be page-aligned shared or
    /// anonymous memory of this process, and `frameSize` the system page size (4 KiB). Throws
    /// `HardwareError` with what is missing when the kernel or the process cannot track it
    /// (userfaultfd refused, no `PAGEMAP_SCAN`, a second `mprotect` region).
    public func makeTracking(cpuView: UnsafeMutableRawPointer, byteCount: Int, frameSize: Int) throws(HardwareError)
        -> any DirtyTracking
    {
        switch self {
        case .uffd: RealMMUTracking(try UffdWriteTracker(base: cpuView, byteCount: byteCount, frameSize: frameSize))
        case .mprotect:
            RealMMUTracking(try MprotectWriteTracker(base: cpuView, byteCount: byteCount, frameSize: frameSize))
        }
    }
}
