import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// The stores of a `valgrind --tool=lackey --trace-mem=yes` log, mapped onto frames.
///
/// Only store (` S addr,size`) and modify (` M addr,size`) lines count; loads and instruction
/// fetches are skipped. Each distinct 4 KiB virtual page gets the next frame in first-touch order
/// (wrapping when the trace touches more pages than memory has), so a real program's write
/// pattern drives the emulated machine.
public struct LackeyTrace: Sendable {
    /// One store of the trace.
    public struct Store: Sendable, Hashable {
        /// The frame the store's page maps to.
        public var frame: UInt32
        /// The store's offset in its page, in units of `unitSize` bytes.
        public var unit: UInt16
    }

    /// The stores in trace order.
    public let stores: [Store]
    /// The distinct pages the trace wrote.
    public let distinctPages: Int

    /// The most stores read from one trace (512 MiB of memory).
    public static let maximumStores = 64 << 20

    /// Reads the trace at `path` for a module of `frameCount` frames, with stores of `unitSize` bytes.
    public init(path: String, frameCount: Int, unitSize: Int, pageSize: Int = 4096) throws(HardwareError) {
        let file = try Self.open(path)
        defer { fclose(file) }
        var frameOfPage: [UInt64: UInt32] = [:]
        var stores: [Store] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let pageShift = UInt64(pageSize.trailingZeroBitCount)
        while getline(&line, &capacity, file) > 0 {
            guard let text = line, let store = Self.parseStore(text) else { continue }
            let page = store.address >> pageShift
            let frame: UInt32
            if let known = frameOfPage[page] {
                frame = known
            } else {
                frame = UInt32(frameOfPage.count % frameCount)
                frameOfPage[page] = frame
            }
            let unit = UInt16(Int(store.address & UInt64(pageSize - 1)) / unitSize)
            stores.append(Store(frame: frame, unit: unit))
            if stores.count >= Self.maximumStores { break }
        }
        guard !stores.isEmpty else { throw Self.noStores(path) }
        self.stores = stores
        self.distinctPages = frameOfPage.count
    }

    /// Checks, without reading it all, that `path` is a regular file with at least one store
    /// line: what the run needs, so that a configuration check can promise it.
    public static func check(path: String) throws(HardwareError) {
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
    private static func open(_ path: String) throws(HardwareError) -> UnsafeMutablePointer<FILE> {
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

    private static func noStores(_ path: String) -> HardwareError {
        HardwareError(
            .trace, operation: "read the trace",
            message:
                "\(path) has no store lines (' S addr,size' or ' M addr,size'); is it a lackey --trace-mem=yes log?")
    }

    /// The most hex digits of an address (64 bits).
    private static let maximumAddressDigits = 16

    /// Parses ` S 04222cac,4` or ` M 0421c7f0,8`; nil for any other line, including an address
    /// longer than 64 bits.
    static func parseStore(_ line: UnsafePointer<CChar>) -> (address: UInt64, size: Int)? {
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
