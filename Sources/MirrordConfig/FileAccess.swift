#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read.
struct FileReadError: Error, CustomStringConvertible {
    var description: String

    init(errno code: Int32) { description = String(cString: strerror(code)) }
    init(_ message: String) { description = message }
}

/// The largest configuration file mirrord reads (1 MiB): a real one is a few kilobytes, and a
/// bound keeps a mistaken path (a log, a disk image) from being read whole.
let maximumConfigurationFileSize = 1 << 20

/// Reads a whole text file of at most `limit` bytes. Only regular files: a FIFO with no writer
/// would block, and a device such as `/dev/zero` never ends.
func readTextFile(_ path: String, limit: Int = maximumConfigurationFileSize) throws(FileReadError) -> String {
    // O_NONBLOCK: opening a FIFO with no writer returns at once (and is then refused below).
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError(errno: errno) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileReadError(errno: errno) }
    if let kind = nonRegularKind(info.st_mode) { throw FileReadError("not a regular file (\(kind))") }
    guard Int(info.st_size) <= limit else {
        throw FileReadError("the file is \(info.st_size) bytes; a configuration file may have at most \(limit)")
    }
    var bytes = [UInt8](repeating: 0, count: limit + 1)
    var count = 0
    while count <= limit {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, limit + 1 - count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileReadError(errno: errno)
        }
        if n == 0 { break }
        count += n
    }
    guard count <= limit else { throw FileReadError("the file grew past \(limit) bytes while being read") }
    return String(decoding: bytes[0..<count], as: UTF8.self)
}

/// What a file of mode `mode` is, when it is not a regular file.
func nonRegularKind(_ mode: mode_t) -> String? {
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
