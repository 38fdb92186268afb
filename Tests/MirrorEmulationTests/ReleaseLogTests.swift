import Foundation
import Testing

@testable import MirrorEmulation

/// The release log: what the workload released, read back after a kill.
@Suite("Release log: self-checking records, a torn last one ignored")
struct ReleaseLogTests {
    /// A fresh path in the temporary directory, removed at the end of `body`.
    func withLogPath(_ body: (String) throws -> Void) rethrows {
        let path = NSTemporaryDirectory() + "release-\(UUID().uuidString).log"
        defer { unlink(path) }
        try body(path)
    }

    let sequences = [
        WriterSequence(cpuStores: [812_345, 812_000], dmaTransfers: 4_123),
        WriterSequence(cpuStores: [900_000, 850_001], dmaTransfers: 4_200),
        WriterSequence(cpuStores: [1_000_000, UInt64.max], dmaTransfers: 5_000),
    ]

    /// The bytes of the file at `path`.
    func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    @Test("records read back in order, with and without a DMA engine and with no CPU")
    func roundTrip() throws {
        try withLogPath { path in
            let log = try ReleaseLog(path: path)
            for (i, sequence) in sequences.enumerated() { try log.append(epoch: UInt64(10 + i), sequence: sequence) }
            try log.append(epoch: 20, sequence: WriterSequence(cpuStores: [3], dmaTransfers: nil))
            try log.append(epoch: 21, sequence: WriterSequence(cpuStores: [], dmaTransfers: 9))
            let records = try ReleaseLog.read(path: path)
            #expect(records.map(\.epoch) == [10, 11, 12, 20, 21])
            #expect(records.prefix(3).map(\.sequence) == sequences)
            #expect(records[3].sequence == WriterSequence(cpuStores: [3], dmaTransfers: nil))
            #expect(records[4].sequence == WriterSequence(cpuStores: [], dmaTransfers: 9))
            let text = String(decoding: bytes(path), as: UTF8.self)
            #expect(text.hasPrefix("epoch=10 stores=812345,812000 dma=4123 crc="), "\(text)")
            #expect(throws: ReleaseLog.Failure.self) { try log.append(epoch: 21, sequence: sequences[0]) }
        }
    }

    @Test("a torn last record (cut short) is ignored; reopening cuts it off")
    func tornLastRecord() throws {
        try withLogPath { path in
            do {
                let log = try ReleaseLog(path: path)
                for (i, sequence) in sequences.enumerated() { try log.append(epoch: UInt64(i + 1), sequence: sequence) }
            }
            let whole = bytes(path)
            let lastStart = whole.dropLast().lastIndex(of: UInt8(ascii: "\n"))! + 1
            // Cut short at every length of the last record.
            for cut in lastStart..<(whole.count - 1) {
                write(Array(whole[0..<cut]), to: path)
                let records = try ReleaseLog.read(path: path)
                #expect(records.map(\.epoch) == [1, 2], "cut at \(cut)")
            }
            // Cut short by all but its end of line, and a byte of it damaged too: still torn.
            var damaged = Array(whole.dropLast())
            damaged[lastStart + 7] ^= 0x01
            write(damaged, to: path)
            #expect(try ReleaseLog.read(path: path).map(\.epoch) == [1, 2])
            // Reopened, the torn record is cut off and the next follows the last whole one.
            write(Array(whole[0..<(lastStart + 5)]), to: path)
            let log = try ReleaseLog(path: path)
            #expect(log.lastEpoch == 2)
            try log.append(epoch: 3, sequence: sequences[2])
            #expect(try ReleaseLog.read(path: path).map(\.sequence) == sequences)
            #expect(bytes(path) == whole)
        }
    }

    @Test("damage is refused wherever it is, naming the record")
    func damagedMiddleRecord() throws {
        try withLogPath { path in
            do {
                let log = try ReleaseLog(path: path)
                for (i, sequence) in sequences.enumerated() { try log.append(epoch: UInt64(i + 1), sequence: sequence) }
            }
            var damaged = bytes(path)
            let secondStart = damaged.firstIndex(of: UInt8(ascii: "\n"))! + 1
            damaged[secondStart + 20] ^= 0x04
            write(damaged, to: path)
            do {
                _ = try ReleaseLog.read(path: path)
                Issue.record("a damaged middle record was accepted")
            } catch {
                #expect("\(error)".contains("record 2"), "\(error)")
            }
            #expect(throws: ReleaseLog.Failure.self) { try ReleaseLog(path: path) }
            // The last record whole but damaged: damage, not a tear (it may have been released).
            var lastDamaged = Array(damaged[0..<secondStart])
            lastDamaged[10] ^= 0x04
            write(lastDamaged, to: path)
            #expect(throws: ReleaseLog.Failure.self) { try ReleaseLog.read(path: path) }
            // Records out of order (one repeated) are refused too.
            let first = Array(damaged[0..<secondStart])
            write(first + first, to: path)
            do {
                _ = try ReleaseLog.read(path: path)
                Issue.record("a repeated epoch was accepted")
            } catch {
                #expect("\(error)".contains("epochs must increase"), "\(error)")
            }
        }
    }
}
