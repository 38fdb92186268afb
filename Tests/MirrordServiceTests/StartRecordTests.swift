import Foundation
import MirrorReplication
import Testing

@testable import MirrordService

/// The record of a host's machine starts, as a takeover asked with it reads, checks and raises
/// it: the rule that lets a switch-over's promote skip the peer, and the durable, never-lowered
/// write before the machine can write anywhere.
@Suite("Start record: this host's export known newest, the start recorded first")
struct StartRecordTests {
    let directory: String
    let record: StartRecord

    init() throws {
        directory = try #require(mkdtemp(strdup("/tmp/mirrord-start-record.XXXXXX")).map { String(cString: $0) })
        record = StartRecord(path: directory + "/export.img.machine-started")
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    @Test("no record, or one that is not a number, reads as none (0), as the agent's shell reads it")
    func readsNone() throws {
        defer { remove() }
        #expect(record.read() == 0)
        try "not a time\n".write(toFile: record.path, atomically: false, encoding: .utf8)
        #expect(record.read() == 0)
        try "1796651177213246131\n".write(toFile: record.path, atomically: false, encoding: .utf8)
        #expect(record.read() == 1_796_651_177_213_246_131)
    }

    @Test("known newest only with a committed epoch whose generation is past the recorded start")
    func knowsNewest() {
        defer { remove() }
        let at = { (generation: UInt64) in ExportProbe.Position(generation: generation, epoch: 5) }
        #expect(record.knowsNewest(at(301), started: 300))
        #expect(!record.knowsNewest(at(300), started: 300))  // at the bound: compared
        #expect(!record.knowsNewest(at(299), started: 300))
        #expect(!record.knowsNewest(at(301), started: 0))  // no start recorded: compared
        #expect(!record.knowsNewest(nil, started: 300))  // no committed epoch
    }

    @Test("the bound: the clock, or past the generation taken over when that is later")
    func bound() {
        defer { remove() }
        #expect(StartRecord.bound(takingOver: nil, now: 1_000) == 1_000)
        #expect(StartRecord.bound(takingOver: 999, now: 1_000) == 1_000)
        #expect(StartRecord.bound(takingOver: 1_000, now: 1_000) == 1_001)
        #expect(StartRecord.bound(takingOver: 5_000, now: 1_000) == 5_001)
    }

    @Test("raised durably to a later bound, never lowered; no temporary file left")
    func raise() throws {
        defer { remove() }
        try record.raise(to: 500)
        #expect(record.read() == 500)
        try record.raise(to: 400)
        #expect(record.read() == 500)
        try record.raise(to: 501)
        #expect(try String(contentsOfFile: record.path, encoding: .utf8) == "501\n")
        #expect(!FileManager.default.fileExists(atPath: record.path + ".new"))
    }

    @Test("raised for a takeover without a sync, then made durable: the same record; with none, an error naming it")
    func raiseThenMakeDurable() throws {
        defer { remove() }
        try record.raise(to: 700, durable: false)
        #expect(record.read() == 700)
        try record.makeDurable()
        #expect(try String(contentsOfFile: record.path, encoding: .utf8) == "700\n")
        #expect(!FileManager.default.fileExists(atPath: record.path + ".new"))
        let missing = StartRecord(path: record.path + ".missing")
        #expect(throws: StartRecordError.self) { try missing.makeDurable() }
        do {
            try missing.makeDurable()
        } catch {
            #expect(error.description.contains(missing.path), "\(error)")
        }
    }

    @Test("a record that cannot be written is an error naming it, and the old one stays")
    func unwritable() throws {
        defer { remove() }
        try record.raise(to: 500)
        // A directory where the new file would go: the write fails before anything is renamed.
        #expect(mkdir(record.path + ".new", 0o700) == 0)
        #expect(throws: StartRecordError.self) { try record.raise(to: 600) }
        #expect(record.read() == 500)
        do {
            try record.raise(to: 600)
        } catch {
            #expect(error.description.hasPrefix("cannot record the machine's start in \(record.path)"))
        }
    }
}
