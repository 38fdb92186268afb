#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read.
struct FileReadError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { String(cString: strerror(errno)) }
}

/// Reads a whole text file (configuration files are small).
func readTextFile(_ path: String) throws(FileReadError) -> String {
    guard let file = fopen(path, "r") else { throw FileReadError(errno: errno) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n > 0 { bytes.append(contentsOf: buffer[0..<n]) }
        if n < buffer.count {
            if ferror(file) != 0 { throw FileReadError(errno: errno) }
            break
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whether `path` names a regular file this process can read.
func isReadableFile(_ path: String) -> Bool {
    var info = stat()
    return access(path, R_OK) == 0 && stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}
