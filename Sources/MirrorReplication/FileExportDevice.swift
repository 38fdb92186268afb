#if canImport(Glibc)
import Glibc
#endif

/// An export that is a file on this host: the image behind the backup host's own `nbd-server`,
/// which a takeover reads and replays without going through the network.
package final class FileExportDevice: ExportDevice {
    /// The file's path.
    package let path: String
    package let size: UInt64
    private let fd: Int32
    /// The address of the whole file mapped shared, read and write (0: not mapped; see
    /// ``init(path:readOnly:mapped:)``). Kept as an integer so that the device stays `Sendable`:
    /// the mapping is fixed for the device's life, and its bytes are the file's, which callers
    /// already share through the file; its one writer is whoever holds the file's lock.
    private let mapping: UInt
    /// Why the file asked to be mapped is not (nil: mapped, or not asked): it is then read and
    /// written with `pread` and `pwritev`, as before the standby mapped it.
    package let unmappedBecause: String?

    /// Opens the file at `path` for reading and writing, or with `readOnly` for reading alone (a
    /// probe: every write and flush then fails, so that nothing can change the file).
    ///
    /// With `mapped` (and not `readOnly`), the file is also mapped, and reads and writes are copies
    /// to and from the mapping: no system call and no lock of the file a frame (a `pwritev` a frame
    /// cost ~1.9 µs on a tmpfs, most of it the call and the page cache's per-write work, against
    /// ~0.3 µs for the copy), for the standby, which puts every committed frame in place. The
    /// bytes are the page cache's, as a `pwrite`'s are, and ``flush()`` makes them stable the
    /// same way. A file that shrinks under the mapping, or a page that cannot be read or allocated
    /// (an I/O error, a full filesystem), raises SIGBUS at the copy instead of an error: the
    /// process that maps says what then happens (``mappedBytes``; the standby ends with one line,
    /// as the daemon does for its modules).
    package init(path: String, readOnly: Bool = false, mapped: Bool = false) throws(ExportError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw ExportError(.io, "open \(path)", String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ExportError(.io, "stat \(path)", reason)
        }
        var mapping: UInt = 0
        var unmappedBecause: String?
        if mapped && !readOnly {
            // A filesystem that cannot map a file shared (some FUSE or network ones) still works,
            // with a system call a write.
            if info.st_size == 0 {
                unmappedBecause = "the file is empty"
            } else if let base = mmap(nil, Int(info.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
                base != MAP_FAILED
            {
                mapping = UInt(bitPattern: base)
            } else {
                unmappedBecause = "mmap: \(String(cString: strerror(errno)))"
            }
        }
        self.path = path
        self.fd = fd
        self.size = UInt64(info.st_size)
        self.mapping = mapping
        self.unmappedBecause = unmappedBecause
    }

    deinit {
        if let base { munmap(base, Int(size)) }
        close(fd)
    }

    /// The file's bytes as mapped (nil: not mapped), for the process to watch for SIGBUS.
    package var mappedBytes: UnsafeRawBufferPointer? {
        base.map { UnsafeRawBufferPointer(start: $0, count: Int(size)) }
    }

    /// The mapping's first byte (nil: not mapped).
    private var base: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: mapping) }

    /// The mapping's bytes at `offset` for `count` bytes, from `base`; throws when the range is
    /// not inside the file (as a `pread` there would find its end).
    private func mapped(
        _ base: UnsafeMutableRawPointer, _ offset: UInt64, _ count: Int, _ what: String
    ) throws(ExportError) -> UnsafeMutableRawPointer {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw ExportError(.io, "\(what) \(path) at \(offset)", "end of file (\(size) bytes, as mapped)")
        }
        return base + Int(offset)
    }

    /// Takes the file for this process alone while the device lives (an exclusive `flock`), so
    /// that a standby and a takeover never write it at once; refused, saying so, when another
    /// process has it (`inUse`).
    package func lock(for purpose: String) throws(ExportError) {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason =
                errno == EWOULDBLOCK
                ? "another mirrord process has this file (a `mirrord standby` applying epochs, or a takeover running from "
                    + "it): stop that one first"
                : String(cString: strerror(errno))
            throw ExportError(errno == EWOULDBLOCK ? .inUse : .io, "\(purpose) \(path)", reason)
        }
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        if let base {
            let source = try mapped(base, offset, buffer.count, "read")
            if let target = buffer.baseAddress { target.copyMemory(from: source, byteCount: buffer.count) }
            return
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ExportError(
                    .io, "read \(path) at \(offset)", n == 0 ? "end of file" : String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Writes the extents in order: mapped, each a copy into the file's pages; else a run of
    /// extents that follow one another in the file (an epoch's neighbouring frames) goes out as
    /// one `pwritev`, up to ``runExtents`` at a time.
    package func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError) {
        if let base {
            for extent in extents {
                try mapped(base, extent.offset, extent.length, "write").copyMemory(
                    from: extent.source, byteCount: extent.length)
            }
            if durable { try flush() }
            return
        }
        try withUnsafeTemporaryAllocation(of: iovec.self, capacity: Self.runExtents) {
            (vectors) throws(ExportError) in
            var index = 0
            while index < extents.count {
                let offset = extents[index].offset
                var end = offset
                var count = 0
                while index < extents.count, count < vectors.count, extents[index].offset == end {
                    let extent = extents[index]
                    vectors[count] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: extent.source), iov_len: extent.length)
                    end += UInt64(extent.length)
                    count += 1
                    index += 1
                }
                try writeRun(UnsafeMutableBufferPointer(rebasing: vectors[0..<count]), at: offset)
            }
        }
        if durable { try flush() }
    }

    /// The most extents one `pwritev` takes (well under `IOV_MAX`).
    static let runExtents = 64

    /// Writes `vectors` one after another from `offset`, resuming after a short write.
    private func writeRun(_ vectors: UnsafeMutableBufferPointer<iovec>, at offset: UInt64) throws(ExportError) {
        var first = Self.advance(vectors, from: 0, by: 0)
        var at = offset
        while first < vectors.count {
            let n = pwritev(fd, vectors.baseAddress! + first, Int32(vectors.count - first), off_t(at))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ExportError(
                    .io, "write \(path) at \(at)", n == 0 ? "no byte written" : String(cString: strerror(errno)))
            }
            at += UInt64(n)
            first = Self.advance(vectors, from: first, by: n)
        }
    }

    /// After `written` bytes of the vectors from `first` on went out: the first vector with bytes
    /// still to write (`vectors.count` when none is left), which is trimmed to what remains of it.
    /// Empty vectors are passed over, so that a write is never asked for nothing.
    package static func advance(_ vectors: UnsafeMutableBufferPointer<iovec>, from first: Int, by written: Int) -> Int {
        var first = first
        var left = written
        while first < vectors.count, left >= vectors[first].iov_len {
            left -= vectors[first].iov_len
            first += 1
        }
        if left > 0 {
            vectors[first].iov_base += left
            vectors[first].iov_len -= left
        }
        return first
    }

    /// Makes every write so far stable: `fdatasync`, which writes back the file's dirty pages,
    /// those written through the mapping too.
    package func flush() throws(ExportError) {
        guard fdatasync(fd) == 0 else { throw ExportError(.io, "flush \(path)", String(cString: strerror(errno))) }
    }
}
