import Foundation
import MirrordControl
import Testing

@testable import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The go FIFO of a takeover waiting to be asked: a real FIFO, written as the agent's shell
/// writes it; the gate it tells answers as a `take-over` would.
@Suite("Takeover go FIFO: a line written there tells the waiting takeover to go")
struct TakeoverGoFIFOTests {
    let directory: String
    let record = LogRecord()

    init() throws {
        directory = try #require(mkdtemp(strdup("/tmp/mirrord-go-fifo.XXXXXX")).map { String(cString: $0) })
    }

    /// Writes `text` to the FIFO at `path`, as `echo … >&9` does on a descriptor opened `<>`.
    func write(_ text: String, to path: String) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let bytes = Array(text.utf8)
        #expect(Glibc.write(fd, bytes, bytes.count) == bytes.count)
    }

    @Test("go TOKEN asks, after lines that are not one (journalled and ignored); the outcome goes to take-over told")
    func goLine() throws {
        let path = directory + "/go.fifo"
        try #require(mkfifo(path, 0o600) == 0)
        let gate = TakeoverOnRequest(
            source: "/srv/export.img", configuration: [:], goRequest: TakeoverRequest(startRecord: "/srv/record"))
        let fifo = try TakeoverGoFIFO(path: path, gate: gate, logger: record.logger)
        defer {
            fifo.stop()
            unlink(path)
            rmdir(directory)
        }
        // Written before anything reads it: the read-write open keeps it.
        try write("stop\ngo\ngo bad/token\n", to: path)
        // A line split across two reads: the second half written once the first was read.
        let writer = open(path, O_RDWR | O_CLOEXEC)
        try #require(writer >= 0)
        defer { close(writer) }
        #expect(Glibc.write(writer, "go 4711-", 8) == 8)
        #expect(
            TakeoverOnRequestTests.eventually {
                var unread: Int32 = 0
                return ioctl(writer, UInt(FIONREAD), &unread) == 0 && unread == 0
            })
        #expect(gate.waitForRequest(pollNanoseconds: 1_000) { true } == nil)
        #expect(Glibc.write(writer, "523.17\n", 7) == 7)
        // A hang detector, not a timing: the reader wakes on the line.
        let asked = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        #expect(asked.request == TakeoverRequest(startRecord: "/srv/record"))
        gate.tookOver("took over")
        #expect(
            gate.reply(to: .takeOver(TakeoverRequest(told: "4711-523.17")))
                == .acknowledged(ControlAcknowledgement(action: .takeOver, what: "took over")))
        fifo.stop()  // joins the reader: every line it read is journalled
        let ignored = record.all.filter { $0.level == .warning }.map(\.message)
        #expect(ignored.count == 3)
        #expect(ignored.first?.contains("ignored \"stop\"") == true)
        #expect(record.all.contains { $0.message == "told to go through the go FIFO (go 4711-523.17)" })
    }

    @Test("a path that is no FIFO: refused, naming the flag and the path")
    func notAFIFO() throws {
        let path = directory + "/plain"
        try "go x\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer {
            unlink(path)
            rmdir(directory)
        }
        let gate = TakeoverOnRequest(source: "/srv/export.img", configuration: [:], goRequest: TakeoverRequest())
        #expect(throws: TakeoverGoFIFO.OpenError.self) {
            try TakeoverGoFIFO(path: path, gate: gate, logger: record.logger)
        }
        do {
            _ = try TakeoverGoFIFO(path: path, gate: gate, logger: record.logger)
        } catch {
            #expect(error.description == "--go-fifo \(path): not a FIFO (mkfifo makes one)")
        }
        #expect(gate.waitForRequest(pollNanoseconds: 1_000) { true } == nil)
    }
}
