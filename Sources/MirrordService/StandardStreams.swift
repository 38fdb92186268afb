#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` in full to file descriptor `fd` (unbuffered: one call where it fits, so lines
/// from threads do not mix); returns nil, or the `errno` of the write that failed.
func writeFully(_ text: String, to fd: Int32) -> Int32? {
    var text = text
    return text.withUTF8 { writeFully(UnsafeRawBufferPointer($0), to: fd) }
}

/// Writes `bytes` in full to file descriptor `fd`; returns nil, or the `errno` of the write that
/// failed.
func writeFully(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return errno }
        if n == 0 { return EIO }
        offset += n
    }
    return nil
}

/// Writes `text` to standard output in full; returns nil, or the `errno` of the failed write (a
/// closed pipe, a full disk): a summary that was never written must not end in exit status 0.
func writeStandardOutput(_ text: String) -> Int32? { writeFully(text, to: 1) }

/// Writes `text` to standard error; where that fails there is nowhere left to say so.
func writeStandardError(_ text: String) { _ = writeFully(text, to: 2) }
