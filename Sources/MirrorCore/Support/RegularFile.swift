#if canImport(Glibc)
import Glibc
#endif

/// Opening and reading the files that come from outside (a configuration file, a trace, what
/// `/proc` and `/sys` report): regular files only, so that a FIFO with no writer cannot block
/// the caller and a device such as `/dev/zero` is not read without end.
package enum RegularFile {
    /// Why a file could not be opened or read.
    package struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong, for a message (the caller adds the path).
        package var description: String
        /// The `errno` of the call that failed, when one did.
        package var errno: Int32?

        init(errno code: Int32) {
            description = String(cString: strerror(code))
            errno = code
        }

        init(_ message: String) { description = message }
    }

    /// Opens `path` read-only (without blocking on a FIFO) and checks that it is a regular file;
    /// returns the descriptor, which the caller closes.
    package static func openForReading(_ path: String) throws(Failure) -> Int32 {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw Failure(errno: code)
        }
        if let kind = nonRegularKind(info.st_mode) {
            close(fd)
            throw Failure("not a regular file (\(kind))")
        }
        return fd
    }

    /// The whole text of the regular file at `path`, of at most `limit` bytes; `what` names the
    /// kind of file in the message when it is larger ("a configuration file").
    package static func readText(_ path: String, limit: Int, what: String) throws(Failure) -> String {
        let fd = try openForReading(path)
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, Int(info.st_size) > limit {
            throw Failure("the file is \(info.st_size) bytes; \(what) may have at most \(limit)")
        }
        // Files of /proc and /sys say size 0: read until the end, one byte past the limit.
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count <= limit {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, limit + 1 - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno)
            }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw Failure("the file grew past \(limit) bytes while being read") }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }

    /// What a file of mode `mode` is, when it is not a regular file.
    package static func nonRegularKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }
}
