#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to standard output in full; returns nil, or the `errno` of the write that
/// failed (a closed pipe, a full disk): a summary that was never written must not end in exit
/// status 0.
func writeStandardOutput(_ text: String) -> Int32? {
    var text = text
    return text.withUTF8 { bytes -> Int32? in
        var offset = 0
        while offset < bytes.count {
            let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return errno }
            if n == 0 { return EIO }
            offset += n
        }
        return nil
    }
}
