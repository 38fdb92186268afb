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

    /// Opens the file at `path` for reading and writing, or with `readOnly` for reading alone (a
    /// probe: every write and flush then fails, so that nothing can change the file).
    package init(path: String, readOnly: Bool = false) throws(ExportError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw ExportError(.io, "open \(path)", String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ExportError(.io, "stat \(path)", reason)
        }
        self.path = path
        self.fd = fd
        self.size = UInt64(info.st_size)
    }

    deinit { close(fd) }

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

    package func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError) {
        for extent in extents {
            var done = 0
            while done < extent.length {
                let n = pwrite(fd, extent.source + done, extent.length - done, off_t(extent.offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw ExportError(.io, "write \(path) at \(extent.offset)", String(cString: strerror(errno)))
                }
                done += n
            }
        }
        if durable { try flush() }
    }

    package func flush() throws(ExportError) {
        guard fdatasync(fd) == 0 else { throw ExportError(.io, "flush \(path)", String(cString: strerror(errno))) }
    }
}
