import CMirrorShims
import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// The emulated workload's *network output*: a file to which the primary appends, for each epoch
/// that has committed on the spare's export, the ``WriterSequence`` that epoch holds. A store
/// counts as *released* (Remus's output commit) once it is in this log: a takeover after any
/// failure must lose none of them, which ``ReleasedStoreCheck`` verifies against the spare's image
/// without trusting mirrord's own bookkeeping.
///
/// Each record is one text line, self-checking:
///
/// ```
/// epoch=5123 stores=812345,812000 dma=4123 crc=1a2b3c4d
/// ```
///
/// (`dma=-` without a DMA engine), where `crc` is the CRC-32C of the bytes before ` crc=`. A record
/// is written with one `write(2)` and no `fsync`: the kernel keeps what `write` returned through a
/// `kill -9` of the process, which is the failure this log is for; surviving a power loss would
/// need an `fdatasync` after each append. A kill in the middle of a write can leave a torn last
/// record, cut short before its end of line (the last byte a record writes), which
/// ``read(path:)`` ignores; a whole line that fails its check is damage, not a tear, and is
/// refused wherever it is (a damaged last record may have been released).
///
/// Appending allocates nothing (the line is built in a buffer sized when the log is opened);
/// the log is not thread-safe: one thread appends.
public final class ReleaseLog {
    /// One record: an epoch and the sequence it released.
    public struct Record: Sendable, Hashable {
        /// The epoch that committed.
        public var epoch: UInt64
        /// What each writer had done when it was taken (in that epoch's blackout).
        public var sequence: WriterSequence

        /// A record of `sequence` released by `epoch`.
        public init(epoch: UInt64, sequence: WriterSequence) {
            self.epoch = epoch
            self.sequence = sequence
        }
    }

    /// Why the log could not be opened, written or read.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong, with the path.
        public var description: String
        /// The `errno` of the call that failed, when one did.
        public var errno: Int32?
    }

    /// The path of the log.
    public let path: String
    private let fd: Int32
    /// The line being built, with room for a record of ``capacityCPUs`` CPUs.
    private var line: UnsafeMutableBufferPointer<UInt8>
    private var capacityCPUs = 64

    /// Opens the log at `path` for appending, creating it (mode 0600) when it does not exist. An
    /// existing log is checked as ``read(path:)`` does and a torn last record cut off, so that
    /// the next record follows the last whole one; a log damaged before its last record is
    /// refused. Records appended must carry epochs above the last one in the log.
    public init(path: String) throws(Failure) {
        self.path = path
        let existing: (records: [Record], validBytes: Int)?
        if access(path, F_OK) == 0 {
            existing = try Self.scan(path: path)
        } else {
            existing = nil
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Self.failure(path, "open", errno) }
        if let existing {
            guard ftruncate(fd, off_t(existing.validBytes)) == 0 else {
                let code = errno
                close(fd)
                throw Self.failure(path, "cut the torn last record from", code)
            }
            lastEpoch = existing.records.last?.epoch
        }
        self.fd = fd
        line = .allocate(capacity: Self.lineCapacity(cpus: capacityCPUs))
    }

    deinit {
        close(fd)
        line.deallocate()
    }

    /// The epoch of the last record in the log, or nil for an empty log.
    public private(set) var lastEpoch: UInt64?

    /// Appends the record of `epoch`, which released `sequence`, with one `write(2)` (repeated
    /// only for what a short write left). Allocates nothing unless `sequence` has more than 64
    /// CPUs and more than any record before it.
    public func append(epoch: UInt64, sequence: WriterSequence) throws(Failure) {
        if let lastEpoch, epoch <= lastEpoch {
            throw Failure(
                description: "\(path): epoch \(epoch) released after epoch \(lastEpoch); epochs must increase")
        }
        if sequence.cpuCount > capacityCPUs {
            capacityCPUs = sequence.cpuCount
            line.deallocate()
            line = .allocate(capacity: Self.lineCapacity(cpus: capacityCPUs))
        }
        let count = Self.encode(epoch: epoch, sequence: sequence, into: line)
        var written = 0
        while written < count {
            let n = write(fd, line.baseAddress! + written, count - written)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.failure(path, "append to", errno)
            }
            written += n
        }
        lastEpoch = epoch
    }

    /// The valid records of the log at `path`, in order: a torn last record (cut short by a kill
    /// in the middle of its write: no end of line) is ignored; a damaged record (a whole line
    /// failing its check, or not a record), or epochs that do not increase, are refused.
    public static func read(path: String) throws(Failure) -> [Record] {
        try scan(path: path).records
    }
}

extension ReleaseLog {
    /// The bytes of a record of `cpus` CPUs at most: the keys, 20 digits a count, the check.
    fileprivate static func lineCapacity(cpus: Int) -> Int { 64 + 21 * (cpus + 2) }

    /// Writes the line of a record into `line` (room for ``lineCapacity(cpus:)``) and returns its
    /// length.
    fileprivate static func encode(
        epoch: UInt64, sequence: WriterSequence, into line: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        var at = 0
        func put(_ text: StaticString) {
            text.withUTF8Buffer {
                for byte in $0 {
                    line[at] = byte
                    at += 1
                }
            }
        }
        func put(decimal value: UInt64) {
            var digits: (UInt64, Int) = (value, 0)
            repeat {
                digits.0 /= 10
                digits.1 += 1
            } while digits.0 != 0
            var v = value
            for i in stride(from: at + digits.1 - 1, through: at, by: -1) {
                line[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            at += digits.1
        }
        put("epoch=")
        put(decimal: epoch)
        put(" stores=")
        for (i, stores) in sequence.cpuStores.enumerated() {
            if i > 0 { put(",") }
            put(decimal: stores)
        }
        put(" dma=")
        if let transfers = sequence.dmaTransfers { put(decimal: transfers) } else { put("-") }
        let crc = mirrord_crc32c(0, line.baseAddress!, at)
        put(" crc=")
        for shift in stride(from: 28, through: 0, by: -4) {
            let nibble = UInt8(truncatingIfNeeded: crc >> UInt32(shift)) & 0xF
            line[at] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            at += 1
        }
        put("\n")
        return at
    }
}

extension ReleaseLog {
    /// The records of the log at `path` and the bytes they take (where a torn last record starts).
    fileprivate static func scan(path: String) throws(Failure) -> (records: [Record], validBytes: Int) {
        let bytes = try contents(path)
        var records: [Record] = []
        var start = 0
        var validBytes = 0
        var number = 0
        while start < bytes.count {
            number += 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n"))
            let lineEnd = end ?? bytes.count
            // A line cut short (no end of line: the last byte a record writes) was torn by a kill
            // in the middle of its write, and never released.
            guard end != nil else { break }
            let record: Record
            switch parse(bytes[start..<lineEnd]) {
            case .success(let parsed):
                record = parsed
            case .failure(let failure):
                throw Failure(
                    description: "\(path): record \(number) (at byte \(start)) is damaged (\(failure.reason)); "
                        + "a kill tears only the last record, cutting it short, so the log is corrupt")
            }
            if let previous = records.last, record.epoch <= previous.epoch {
                throw Failure(
                    description: "\(path): record \(number) (at byte \(start)) releases epoch \(record.epoch) after "
                        + "epoch \(previous.epoch); epochs must increase")
            }
            records.append(record)
            start = lineEnd + 1
            validBytes = start
        }
        return (records, validBytes)
    }

    /// The record of one line (without its end of line), or why it is not one.
    fileprivate static func parse(_ line: ArraySlice<UInt8>) -> Result<Record, ParseFailure> {
        let marker = Array(" crc=".utf8)
        guard line.count > marker.count + 8,
            line[(line.endIndex - 8 - marker.count)..<(line.endIndex - 8)].elementsEqual(marker)
        else { return .failure(ParseFailure("no check at its end")) }
        let body = line[line.startIndex..<(line.endIndex - 8 - marker.count)]
        guard let stored = UInt32(String(decoding: line[(line.endIndex - 8)...], as: UTF8.self), radix: 16) else {
            return .failure(ParseFailure("its check is not hexadecimal"))
        }
        let crc = body.withContiguousStorageIfAvailable { mirrord_crc32c(0, $0.baseAddress!, $0.count) } ?? 0
        guard crc == stored else {
            return .failure(ParseFailure("its check \(hex(stored)) is not the CRC-32C \(hex(crc)) of its text"))
        }
        let fields = String(decoding: body, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].hasPrefix("epoch="), fields[1].hasPrefix("stores="),
            fields[2].hasPrefix("dma="), let epoch = UInt64(fields[0].dropFirst(6))
        else { return .failure(ParseFailure("its fields are not epoch=, stores=, dma=")) }
        var stores: [UInt64] = []
        let list = fields[1].dropFirst(7)
        if !list.isEmpty {
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard let count = UInt64(item) else { return .failure(ParseFailure("a store count is not a number")) }
                stores.append(count)
            }
        }
        let dmaText = fields[2].dropFirst(4)
        let dma: UInt64?
        if dmaText == "-" {
            dma = nil
        } else if let transfers = UInt64(dmaText) {
            dma = transfers
        } else {
            return .failure(ParseFailure("the DMA count is not a number"))
        }
        return .success(Record(epoch: epoch, sequence: WriterSequence(cpuStores: stores, dmaTransfers: dma)))
    }

    /// Why a line is not a record.
    fileprivate struct ParseFailure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    fileprivate static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Every byte of the regular file at `path`.
    fileprivate static func contents(_ path: String) throws(Failure) -> [UInt8] {
        let fd: Int32
        do {
            fd = try RegularFile.openForReading(path)
        } catch {
            throw Failure(description: "\(path): cannot open the release log: \(error.description)", errno: error.errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path, "read", errno)
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    fileprivate static func failure(_ path: String, _ operation: String, _ code: Int32) -> Failure {
        Failure(
            description: "\(path): cannot \(operation) the release log: \(String(cString: strerror(code)))", errno: code
        )
    }
}
