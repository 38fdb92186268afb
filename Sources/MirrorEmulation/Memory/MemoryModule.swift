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
        /// An existing file mapped private from `offset` (page-aligned; the module's bytes must
        /// lie within the file): copy-on-write, so the machine starts from the file's contents
        /// without copying them, its writes stay in this process, and the file keeps what it held.
        /// A takeover runs the machine from the export's image this way.
        case privateImage(path: String, offset: UInt64)
    }

    /// The first byte of the module.
    public let base: UnsafeMutableRawPointer
    /// A second mapping of the same memory (``Backing/sharedWithAlias``), or `base`.
    public let alias: UnsafeMutableRawPointer
    /// The size of the module in bytes.
    public let byteCount: Int
    /// What backs it.
    public let backing: Backing
    /// Whether this module created its image file (it did not exist before).
    public let createdImage: Bool

    /// Maps a module of `byteCount` bytes.
    public init(byteCount: Int, backing: Backing, name: String) throws(HardwareError) {
        self.byteCount = byteCount
        self.backing = backing
        switch backing {
        case .anonymous:
            let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                let code = errno
                throw HardwareError(
                    .memory, operation: "map the \(name) module",
                    message: "mmap of \(ByteCount.format(byteCount)) failed: \(String(cString: strerror(code)))",
                    errno: code)
            }
            // Huge pages make the full copy and verify cheaper in TLB misses; a hint, not a must.
            _ = madvise(p, byteCount, MADV_HUGEPAGE)
            base = p
            alias = p
            createdImage = false
        case .file(let path):
            (base, createdImage) = try Self.mapImage(path: path, byteCount: byteCount, name: name)
            alias = base
        case .privateImage(let path, let offset):
            base = try Self.mapPrivate(path: path, offset: offset, byteCount: byteCount, name: name)
            alias = base
            createdImage = false
        case .sharedWithAlias:
            let fd = mirrord_memfd("mirrord-\(name)", byteCount)
            guard fd >= 0 else {
                throw HardwareError(
                    .memory, operation: "create the \(name) module",
                    message: "memfd_create: \(String(cString: strerror(-fd)))", errno: -fd)
            }
            defer { close(fd) }
            let views = (0..<2).map { _ in mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) }
            guard let first = views[0], first != MAP_FAILED, let second = views[1], second != MAP_FAILED else {
                let code = errno
                for view in views { if let view, view != MAP_FAILED { munmap(view, byteCount) } }
                throw HardwareError(
                    .memory, operation: "map the \(name) module twice", message: String(cString: strerror(code)),
                    errno: code)
            }
            base = first
            alias = second
            createdImage = false
        }
    }

    /// Opens (or creates) the image at `path`, sizes it with its blocks reserved, and maps it
    /// shared. The image must be a regular file owned by this user, never a symlink (which could
    /// point a privileged run at any file); its space is allocated up front, so a full
    /// filesystem is an error here, not a SIGBUS on some later store. An image this call created
    /// is removed again when it fails.
    private static func mapImage(path: String, byteCount: Int, name: String) throws(HardwareError)
        -> (base: UnsafeMutableRawPointer, created: Bool)
    {
        func failure(_ operation: String, _ message: String, _ code: Int32? = nil) -> HardwareError {
            HardwareError(
                .imageFile, operation: "\(operation) the \(name) image", message: "\(path): \(message)", errno: code)
        }
        var created = false
        var fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            created = fd >= 0
        }
        guard fd >= 0 else {
            let code = errno
            let why =
                code == ELOOP ? "is a symbolic link; an image must be a regular file" : String(cString: strerror(code))
            throw failure("open", why, code)
        }
        defer { close(fd) }
        var ok = false
        defer { if !ok && created { unlink(path) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            throw failure("open", String(cString: strerror(code)), code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw failure("open", "is not a regular file") }
        guard info.st_uid == geteuid() else {
            throw failure(
                "open",
                "belongs to user \(info.st_uid), not to this process's user \(geteuid()); remove it or run as its owner"
            )
        }
        guard ftruncate(fd, off_t(byteCount)) == 0 else {
            let code = errno
            throw failure("size", "to \(ByteCount.format(byteCount)): \(String(cString: strerror(code)))", code)
        }
        let rc = posix_fallocate(fd, 0, off_t(byteCount))
        guard rc == 0 else {
            // Give back what the attempt took, so that a full filesystem is not left fuller.
            _ = ftruncate(fd, created ? 0 : off_t(info.st_size))
            throw failure(
                "reserve", "cannot reserve \(ByteCount.format(byteCount)): \(String(cString: strerror(rc)))", rc)
        }
        let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            let code = errno
            throw HardwareError(
                .memory, operation: "map the \(name) image", message: "\(path): \(String(cString: strerror(code)))",
                errno: code)
        }
        ok = true
        return (p, created)
    }

    /// Maps `byteCount` bytes of the file at `path` from `offset`, private (copy-on-write). The file
    /// is opened read-only: nothing the machine does can reach it.
    private static func mapPrivate(path: String, offset: UInt64, byteCount: Int, name: String) throws(HardwareError)
        -> UnsafeMutableRawPointer
    {
        func failure(_ operation: String, _ message: String, _ code: Int32? = nil) -> HardwareError {
            HardwareError(
                .imageFile, operation: "\(operation) the \(name) image", message: "\(path): \(message)", errno: code)
        }
        guard offset % UInt64(sysconf(Int32(_SC_PAGESIZE))) == 0 else {
            throw failure("map", "offset \(offset) is not page-aligned")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw failure("open", String(cString: strerror(code)), code)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            throw failure("open", String(cString: strerror(code)), code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw failure("open", "is not a regular file") }
        guard UInt64(info.st_size) >= offset + UInt64(byteCount) else {
            throw failure(
                "map",
                "holds \(info.st_size) bytes; the module needs \(ByteCount.format(byteCount)) from offset \(offset)")
        }
        let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, off_t(offset))
        guard let p, p != MAP_FAILED else {
            let code = errno
            throw HardwareError(
                .memory, operation: "map the \(name) image", message: "\(path): \(String(cString: strerror(code)))",
                errno: code)
        }
        return p
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
        for i in 0..<count {
            words[i] = Self.fillWord(i, seed: seed)
        }
    }

    /// Word `index` of a module filled with ``fill(seed:)``.
    @inline(__always)
    package static func fillWord(_ index: Int, seed: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: index) &* (seed &* 0x9E37_79B9_7F4A_7C15 | 1) ^ seed
    }

}
