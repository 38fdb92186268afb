import CMirrorLinux
import CMirrorShims
import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// Dirty tracking by the real MMU: a memory region registered with userfaultfd in asynchronous
/// write-protect mode, harvested with the `PAGEMAP_SCAN` ioctl (Linux 6.7+), the merged
/// descendant of the pagemap get-and-clear ioctl posted in 2022 (docs/architecture.md lists the
/// sources).
///
/// Write-protecting the region makes the next store to each page take a fault that the kernel
/// resolves by itself (no thread of ours wakes up), marking the page written. One `PAGEMAP_SCAN`
/// then reports the written pages of a range and write-protects them again, atomically, honouring
/// the caller's output capacity. The CPUs' stores stay plain stores.
///
/// `@unchecked Sendable`: the descriptors are immutable after init and the region-vector buffer
/// is used only by the one harvesting thread (the engine's).
final class UffdWriteTracker: PageWriteMechanism, @unchecked Sendable {
    private let uffd: Int32
    private let pagemap: Int32
    private let base: UnsafeMutableRawPointer
    private let byteCount: Int
    private let frameSize: Int
    /// log2 of the frame size (the page size, a power of two): addresses become frames by a shift.
    private let frameShift: UInt64
    /// Regions per `PAGEMAP_SCAN` call; at most 512, the kernel's internal buffer. Seen on Linux
    /// 6.18: when a scan returns as many regions as the vector holds, `walk_end` can stop short of
    /// the range although the whole range was covered, so a loop on `walk_end` would scan the tail
    /// again and count it twice; a scan that returns fewer regions than the vector holds covered
    /// the range.
    private static let regionsPerCall = 512
    private let regions: UnsafeMutablePointer<mirrord_page_region>

    /// Registers `[base, base + byteCount)` for write-protect tracking.
    init(base: UnsafeMutableRawPointer, byteCount: Int, frameSize: Int) throws(HardwareError) {
        guard sysconf(Int32(_SC_PAGESIZE)) == frameSize else {
            throw HardwareError(
                .trackingUnavailable, operation: "userfaultfd tracking",
                message:
                    "needs the system page size (\(sysconf(Int32(_SC_PAGESIZE))) B) to equal the frame size (\(frameSize) B)"
            )
        }
        var step: UnsafePointer<CChar>?
        let fd = mirrord_uffd_open(&step)
        guard fd >= 0 else { throw Self.openError(-fd, step: step.map { String(cString: $0) } ?? "userfaultfd") }
        let pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard pm >= 0 else {
            let code = errno
            close(fd)
            throw HardwareError(
                .trackingUnavailable, operation: "open /proc/self/pagemap", message: String(cString: strerror(code)),
                errno: code)
        }
        let rc = mirrord_uffd_register_wp(fd, base, byteCount)
        guard rc == 0 else {
            close(fd)
            close(pm)
            throw HardwareError(
                .trackingUnavailable, operation: "UFFDIO_REGISTER (write-protect mode)",
                message: "\(String(cString: strerror(-rc))); the active module must be anonymous or shared memory",
                errno: -rc)
        }
        uffd = fd
        pagemap = pm
        self.base = base
        self.byteCount = byteCount
        self.frameSize = frameSize
        frameShift = UInt64(frameSize.trailingZeroBitCount)
        regions = .allocate(capacity: Self.regionsPerCall)
    }

    deinit {
        close(uffd)
        close(pagemap)
        regions.deallocate()
    }

    /// Write-protects every page: from now on a store marks its page written.
    func protectAll() throws(HardwareError) {
        let rc = mirrord_uffd_writeprotect(uffd, base, byteCount, 1)
        guard rc == 0 else {
            throw HardwareError(
                .trackingFailed, operation: "UFFDIO_WRITEPROTECT", message: String(cString: strerror(-rc)), errno: -rc)
        }
    }

    /// Ends tracking: unprotects every page.
    func unprotectAll() {
        _ = mirrord_uffd_writeprotect(uffd, base, byteCount, 0)
    }

    /// The harvest of ``DuplexHardware/harvest(frames:flags:into:)`` over real page tables.
    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HardwareError) -> HarvestResult
    {
        let end = address(frames.upperBound)
        guard get else {
            // Clear only: re-protect every written page of the range, counting them.
            let cleared = try scan(from: address(frames.lowerBound), to: end, clear: true, limit: 0) { _ in }
            return HarvestResult(reported: 0, cleared: cleared, scanEnd: frames.upperBound)
        }
        var reported = 0
        var start = address(frames.lowerBound)
        let out = output.baseAddress!
        while start < end {
            var walkEnd: UInt64 = 0
            let n = mirrord_pagemap_scan(
                pagemap, start, end, clear ? 1 : 0, UInt64(output.count - reported),
                regions, UInt64(Self.regionsPerCall), &walkEnd)
            guard n >= 0 else { throw Self.scanError(Int32(-n)) }
            // One shift per region, then consecutive frame numbers (a region is a run of pages;
            // the scan's page limit keeps every region within the output).
            for i in 0..<Int(n) {
                let first = frame(regions[i].start)
                let count = Int((regions[i].end &- regions[i].start) >> frameShift)
                for k in 0..<count { out[reported &+ k] = UInt32(truncatingIfNeeded: first &+ k) }
                reported += count
            }
            if reported == output.count {
                // Full: the pages after the last one reported keep their written state.
                let next = max(frame(walkEnd), Int(out[reported - 1]) + 1)
                return HarvestResult(
                    reported: reported, cleared: clear ? reported : 0, scanEnd: min(next, frames.upperBound))
            }
            // Fewer regions than the vector holds: the walk covered the range.
            if Int(n) < Self.regionsPerCall { break }
            guard walkEnd > start else {
                throw HardwareError(
                    .trackingFailed, operation: "PAGEMAP_SCAN",
                    message: "a full region vector but no progress at \(start)")
            }
            start = walkEnd
        }
        return HarvestResult(reported: reported, cleared: clear ? reported : 0, scanEnd: frames.upperBound)
    }

    /// Pages written since they were last protected, counted by a scan that changes nothing. A
    /// failed scan counts as everything written, so that nothing ends the passes on its account.
    func writtenCount() -> Int {
        (try? scan(from: address(0), to: address(byteCount / frameSize), clear: false, limit: 0) { _ in }) ?? Int.max
    }

    /// Scans `[from, to)`, calling `body` with each region, and returns the pages seen.
    private func scan(from: UInt64, to end: UInt64, clear: Bool, limit: UInt64, body: (mirrord_page_region) -> Void)
        throws(HardwareError) -> Int
    {
        var start = from
        var pages = 0
        while start < end {
            var walkEnd: UInt64 = 0
            let n = mirrord_pagemap_scan(
                pagemap, start, end, clear ? 1 : 0, limit, regions, UInt64(Self.regionsPerCall), &walkEnd)
            guard n >= 0 else { throw Self.scanError(Int32(-n)) }
            for i in 0..<Int(n) {
                body(regions[i])
                pages += Int((regions[i].end - regions[i].start) >> frameShift)
            }
            if Int(n) < Self.regionsPerCall { break }
            guard walkEnd > start else {
                throw HardwareError(
                    .trackingFailed, operation: "PAGEMAP_SCAN",
                    message: "a full region vector but no progress at \(start)")
            }
            start = walkEnd
        }
        return pages
    }

    private func address(_ frame: Int) -> UInt64 { UInt64(UInt(bitPattern: base)) + UInt64(frame * frameSize) }
    private func frame(_ address: UInt64) -> Int { Int((address - UInt64(UInt(bitPattern: base))) >> frameShift) }

    /// An error for a failed `PAGEMAP_SCAN`; `ENOTTY` means the kernel has no such ioctl.
    static func scanError(_ code: Int32) -> HardwareError {
        if code == ENOTTY {
            return HardwareError(
                .trackingUnavailable, operation: "PAGEMAP_SCAN",
                message: "this kernel has no PAGEMAP_SCAN ioctl (Linux 6.7+ needed)", errno: code)
        }
        return HardwareError(
            .trackingFailed, operation: "PAGEMAP_SCAN", message: String(cString: strerror(code)), errno: code)
    }

    /// An error for a failed userfaultfd open, with what to do about it.
    static func openError(_ code: Int32, step: String) -> HardwareError {
        let reason = String(cString: strerror(code))
        switch (step, code) {
        case ("userfaultfd", EPERM), ("userfaultfd", EACCES):
            return HardwareError(
                .trackingUnavailable, operation: "userfaultfd",
                message: "\(reason): userfaultfd is not allowed here (even with UFFD_USER_MODE_ONLY). "
                    + "Allow it with sysctl vm.unprivileged_userfaultfd=1, or under systemd add "
                    + "SystemCallFilter=userfaultfd to the unit (a seccomp filter may be blocking it)", errno: code)
        case ("userfaultfd", ENOSYS):
            return HardwareError(
                .trackingUnavailable, operation: "userfaultfd",
                message: "\(reason): the kernel has no userfaultfd (CONFIG_USERFAULTFD)", errno: code)
        case ("features", _), ("UFFDIO_API", EINVAL):
            return HardwareError(
                .trackingUnavailable, operation: "userfaultfd",
                message: "the kernel lacks asynchronous write-protect "
                    + "(UFFD_FEATURE_WP_ASYNC and WP_UNPOPULATED, Linux 6.7+)", errno: code)
        default:
            return HardwareError(.trackingUnavailable, operation: step, message: reason, errno: code)
        }
    }
}
