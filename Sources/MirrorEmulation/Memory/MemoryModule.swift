import CMirrorShims
import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// One emulated memory module (DIMM): a region of raw memory, anonymous or mapped from an image
/// file, that CPUs, the DMA engine and the copy path read and write without any per-frame objects.
///
/// `@unchecked Sendable`: the module is raw memory shared by every thread on purpose; who may
/// write which bytes when is the duty of the tracking, blackout and stripe-lock protocols of
/// ``EmulatedMachine``, not of this type.
public final class MemoryModule: @unchecked Sendable {
    /// What backs a module.
    public enum Backing: Sendable, Hashable {
        /// Anonymous memory.
        case anonymous
        /// A file, created or resized to the module's size and mapped shared.
        case file(path: String)
        /// An anonymous memory file (memfd) mapped twice: ``MemoryModule/base`` for the CPUs
        /// (whose writes the real MMU tracks) and ``MemoryModule/alias`` for the DMA engine
        /// (which, as on real hardware, no CPU page table sees).
        case sharedWithAlias
    }

    /// The first byte of the module.
    public let base: UnsafeMutableRawPointer
    /// A second mapping of the same memory (``Backing/sharedWithAlias``), or `base`.
    public let alias: UnsafeMutableRawPointer
    /// The size of the module in bytes.
    public let byteCount: Int
    /// What backs it.
    public let backing: Backing

    /// Maps a module of `byteCount` bytes.
    public init(byteCount: Int, backing: Backing, name: String) throws(HardwareError) {
        self.byteCount = byteCount
        self.backing = backing
        switch backing {
        case .anonymous:
            let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                let code = errno
                throw HardwareError(.memory, operation: "map the \(name) module",
                                    message: "mmap of \(ByteCount.format(byteCount)) failed: \(String(cString: strerror(code)))", errno: code)
            }
            // Huge pages make the full copy and verify cheaper in TLB misses; a hint, not a must.
            _ = madvise(p, byteCount, MADV_HUGEPAGE)
            base = p
            alias = p
        case .file(let path):
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let code = errno
                throw HardwareError(.imageFile, operation: "open the \(name) image",
                                    message: "\(path): \(String(cString: strerror(code)))", errno: code)
            }
            defer { close(fd) }
            guard ftruncate(fd, off_t(byteCount)) == 0 else {
                let code = errno
                throw HardwareError(.imageFile, operation: "size the \(name) image",
                                    message: "\(path) to \(ByteCount.format(byteCount)): \(String(cString: strerror(code)))", errno: code)
            }
            let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            guard let p, p != MAP_FAILED else {
                let code = errno
                throw HardwareError(.memory, operation: "map the \(name) image",
                                    message: "\(path): \(String(cString: strerror(code)))", errno: code)
            }
            base = p
            alias = p
        case .sharedWithAlias:
            let fd = mirrord_memfd("mirrord-\(name)", byteCount)
            guard fd >= 0 else {
                throw HardwareError(.memory, operation: "create the \(name) module",
                                    message: "memfd_create: \(String(cString: strerror(-fd)))", errno: -fd)
            }
            defer { close(fd) }
            let views = (0..<2).map { _ in mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) }
            guard let first = views[0], first != MAP_FAILED, let second = views[1], second != MAP_FAILED else {
                let code = errno
                for view in views { if let view, view != MAP_FAILED { munmap(view, byteCount) } }
                throw HardwareError(.memory, operation: "map the \(name) module twice", message: String(cString: strerror(code)), errno: code)
            }
            base = first
            alias = second
        }
    }

    deinit {
        if case .file = backing { _ = msync(base, byteCount, MS_ASYNC) }
        munmap(base, byteCount)
        if alias != base { munmap(alias, byteCount) }
    }

    /// Fills the module with `pattern(wordIndex)` in every 8-byte word: distinct contents per
    /// frame, so that a copy that misses a frame shows.
    public func fill(seed: UInt64) {
        let words = base.assumingMemoryBound(to: UInt64.self)
        let count = byteCount / 8
        let key = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<count {
            words[i] = UInt64(truncatingIfNeeded: i) &* key ^ seed
        }
    }

}
