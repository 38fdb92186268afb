import CMirrorLinux
import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The classic userspace write tracking (`hardware.backend = "mprotect"`), the baseline the
/// pagemap get-and-clear proposal (2022) calls slow: the region is write-protected with `mprotect`, the first
/// store to each page raises SIGSEGV, and a handler records the page and unprotects it. Each
/// protected/unprotected boundary splits a kernel VMA, so scattered writes run into
/// `vm.max_map_count` (about 65,000 areas); when that happens tracking stops being exact and the
/// next harvest fails with an error instead of reporting too little.
///
/// One region per process (the signal handler is process-wide). `@unchecked Sendable`: the bitmap
/// is touched with atomics by the handler and the one harvesting thread.
final class MprotectWriteTracker: PageWriteMechanism, @unchecked Sendable {
    private static let inUse = Atomic<Bool>(false)
    private let base: UnsafeMutableRawPointer
    private let byteCount: Int
    private let frameSize: Int
    private let bitmap: UnsafeMutablePointer<UInt64>
    private let words: Int

    /// Prepares tracking of `[base, base + byteCount)`; the handler is armed by ``protectAll()``.
    init(base: UnsafeMutableRawPointer, byteCount: Int, frameSize: Int) throws(HardwareError) {
        guard frameSize == 4096, sysconf(Int32(_SC_PAGESIZE)) == 4096 else {
            throw HardwareError(
                .trackingUnavailable, operation: "mprotect tracking",
                message: "needs 4 KiB frames and 4 KiB system pages")
        }
        guard Self.inUse.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else {
            throw HardwareError(
                .trackingUnavailable, operation: "mprotect tracking",
                message: "one region per process (the SIGSEGV handler is process-wide)")
        }
        self.base = base
        self.byteCount = byteCount
        self.frameSize = frameSize
        words = (byteCount / frameSize + 63) / 64
        bitmap = .allocate(capacity: words)
        bitmap.initialize(repeating: 0, count: words)
    }

    deinit {
        mirrord_mprotect_release()
        bitmap.deallocate()
        Self.inUse.store(false, ordering: .releasing)
    }

    func protectAll() throws(HardwareError) {
        bitmap.update(repeating: 0, count: words)
        let rc = mirrord_mprotect_start(base, byteCount, bitmap)
        guard rc == 0 else {
            throw HardwareError(
                .trackingFailed, operation: "mprotect", message: String(cString: strerror(-rc)), errno: -rc)
        }
    }

    func unprotectAll() {
        mirrord_mprotect_stop()
    }

    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HardwareError) -> HarvestResult
    {
        guard mirrord_mprotect_overflowed() == 0 else { throw Self.mapCountError() }
        var scanEnd = 0
        var cleared = 0
        let n = mirrord_mprotect_harvest(
            frames.lowerBound, frames.upperBound, get ? 1 : 0, clear ? 1 : 0,
            output.baseAddress, output.count, &scanEnd, &cleared)
        guard n >= 0 else {
            if -n == Int(ENOMEM) { throw Self.mapCountError() }
            throw HardwareError(
                .trackingFailed, operation: "mprotect", message: String(cString: strerror(Int32(-n))), errno: Int32(-n))
        }
        return HarvestResult(reported: n, cleared: cleared, scanEnd: scanEnd)
    }

    func writtenCount() -> Int {
        (0..<words).reduce(0) { $0 + bitmap[$1].nonzeroBitCount }
    }

    private static func mapCountError() -> HardwareError {
        var limit = "?"
        if let file = fopen("/proc/sys/vm/max_map_count", "r") {
            var buffer = [CChar](repeating: 0, count: 32)
            if fgets(&buffer, 32, file) != nil {
                limit = String(
                    decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            fclose(file)
        }
        return HardwareError(
            .trackingFailed, operation: "mprotect tracking",
            message: "the kernel's map count limit (vm.max_map_count = \(limit)) was reached: too many scattered "
                + "written pages for one protection area each; tracking is no longer exact. Use backend \"uffd\", "
                + "or raise vm.max_map_count", errno: ENOMEM)
    }
}
