#if canImport(Glibc)
import Glibc
#endif

/// The format of a `valgrind --tool=lackey --trace-mem=yes` log: how its file is opened, how a
/// store line (` S addr,size` or ` M addr,size`) is parsed, and the cheap check that a file has
/// one. What a store then does to frames is the emulation's (`LackeyTrace`).
///
/// It lives here, beneath the backends, because two sides read the same file the same way: the
/// configuration check (which promises that `workload.trace` is usable, and imports no backend)
/// and the emulated machine that replays it. One parser, so what the check accepts the run reads.
package enum LackeyTraceFormat {
    /// Checks, without reading it all, that `path` is a regular file with at least one store
    /// line: what the run needs, so that a configuration check can promise it.
    package static func check(path: String) throws(HardwareError) {
        let file = try open(path)
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            if let text = line, parseStore(text) != nil { return }
        }
        throw noStores(path)
    }

    /// Opens `path` for reading; only a regular file (a FIFO with no writer would block, a
    /// device might never end).
    package static func open(_ path: String) throws(HardwareError) -> UnsafeMutablePointer<FILE> {
        func failure(_ message: String, _ code: Int32 = 0) -> HardwareError {
            HardwareError(.trace, operation: "read the trace", message: "\(path): \(message)", errno: code)
        }
        let fd: Int32
        do throws(RegularFile.Failure) {
            fd = try RegularFile.openForReading(path)
        } catch {
            throw failure(error.description, error.errno ?? 0)
        }
        guard let file = fdopen(fd, "r") else {
            let code = errno
            close(fd)
            throw failure(String(cString: strerror(code)), code)
        }
        return file
    }

    /// The error for a file without a single store line.
    package static func noStores(_ path: String) -> HardwareError {
        HardwareError(
            .trace, operation: "read the trace",
            message:
                "\(path) has no store lines (' S addr,size' or ' M addr,size'); is it a lackey --trace-mem=yes log?")
    }

    /// The most hex digits of an address (64 bits).
    private static let maximumAddressDigits = 16

    /// Parses ` S 04222cac,4` or ` M 0421c7f0,8`; nil for any other line, including an address
    /// longer than 64 bits.
    package static func parseStore(_ line: UnsafePointer<CChar>) -> (address: UInt64, size: Int)? {
        // Lackey indents data accesses by one space: " S ", " M ", " L "; instructions start "I ".
        guard line[0] == 0x20, line[1] == 0x53 || line[1] == 0x4D, line[2] == 0x20 else { return nil }
        var p = line + 3
        while p.pointee == 0x20 { p += 1 }
        var address: UInt64 = 0
        var digits = 0
        while true {
            let c = UInt8(bitPattern: p.pointee)
            let value: UInt64
            switch c {
            case 0x30...0x39: value = UInt64(c - 0x30)
            case 0x61...0x66: value = UInt64(c - 0x61 + 10)
            case 0x41...0x46: value = UInt64(c - 0x41 + 10)
            default:
                guard digits > 0, c == 0x2C else { return nil }
                var size = 0
                p += 1
                while p.pointee >= 0x30 && p.pointee <= 0x39 {
                    // No overflow on a long run of digits.
                    if size < 1 << 20 { size = size * 10 + Int(p.pointee - 0x30) }
                    p += 1
                }
                return (address, size)
            }
            guard digits < maximumAddressDigits else { return nil }
            address = address << 4 | value
            digits += 1
            p += 1
        }
    }
}
