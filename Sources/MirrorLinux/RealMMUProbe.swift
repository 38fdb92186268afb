import CMirrorShims
import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// Checks, before anything runs, that this kernel and this process can track writes with the real
/// MMU: userfaultfd with asynchronous write-protect, and the `PAGEMAP_SCAN` ioctl.
///
/// Public so that an embedder can choose ``RealMMUBackend/uffd`` where it works and fall back to
/// ``RealMMUBackend/mprotect`` (or the emulation) where it does not, with the reason to show, before
/// a machine is built.
public enum RealMMUProbe {
    /// Tracks one store to a small scratch region of its own with userfaultfd and harvests it
    /// with `PAGEMAP_SCAN`, and returns what works, in one line, or the error that says what is
    /// missing and what to do (a sysctl, a unit's system-call filter, a newer kernel). Nothing
    /// of the caller's is touched; the region is unmapped before it returns.
    public static func check() -> Result<String, HardwareError> {
        let size = 64 << 10
        let fd = mirrord_memfd("mirrord-probe", size)
        guard fd >= 0 else {
            return .failure(
                HardwareError(
                    .trackingUnavailable, operation: "memfd_create", message: String(cString: strerror(-fd)), errno: -fd
                ))
        }
        defer { close(fd) }
        guard let region = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), region != MAP_FAILED else {
            let code = errno
            return .failure(
                HardwareError(
                    .trackingUnavailable, operation: "mmap", message: String(cString: strerror(code)), errno: code))
        }
        defer { munmap(region, size) }
        do {
            let tracker = try UffdWriteTracker(base: region, byteCount: size, frameSize: 4096)
            try tracker.protectAll()
            region.storeBytes(of: 1, toByteOffset: 3 * 4096, as: UInt8.self)
            let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 16)
            defer { out.deallocate() }
            let result = try tracker.harvest(frames: 0..<16, get: true, clear: true, into: out)
            guard result.reported == 1, out[0] == 3 else {
                return .failure(
                    HardwareError(
                        .trackingUnavailable, operation: "PAGEMAP_SCAN",
                        message: "a store to page 3 was reported as \(Array(out[0..<result.reported]))"))
            }
            return .success("userfaultfd write-protect (async) and PAGEMAP_SCAN work")
        } catch {
            return .failure(error)
        }
    }
}
