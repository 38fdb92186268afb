import MirrorCore

/// The backends whose dirty tracking is done by the processor's MMU, as factories a machine takes
/// (``DirtyTrackingFactory``): the machine's CPUs store through the memory the tracker watches.
package enum RealMMUBackend: String, DirtyTrackingFactory, CaseIterable {
    /// userfaultfd write-protect in asynchronous mode, harvested with `PAGEMAP_SCAN` (Linux 6.7+).
    case uffd
    /// `mprotect` and a SIGSEGV handler: the classic userspace baseline; one region per process,
    /// and it fails (cleanly) past `vm.max_map_count` scattered written pages.
    case mprotect

    /// `"uffd"` or `"mprotect"`.
    package var backendName: String { rawValue }

    /// Registers `[cpuView, cpuView + byteCount)` with the mechanism.
    package func makeTracking(cpuView: UnsafeMutableRawPointer, byteCount: Int, frameSize: Int) throws(HardwareError)
        -> any DirtyTracking
    {
        switch self {
        case .uffd: RealMMUTracking(try UffdWriteTracker(base: cpuView, byteCount: byteCount, frameSize: frameSize))
        case .mprotect:
            RealMMUTracking(try MprotectWriteTracker(base: cpuView, byteCount: byteCount, frameSize: frameSize))
        }
    }
}
