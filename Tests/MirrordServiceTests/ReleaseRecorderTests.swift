import Foundation
import MirrorCore
import MirrorEmulation
import MirrordConfig
import Testing

@testable import MirrordService

/// Output commit: what the release log says an epoch released is what the writers had stored at
/// that epoch's pause, appended only once the epoch committed.
@Suite("Release log: the pause's counts, appended at the commit", .serialized, .machineThreads)
struct ReleaseRecorderTests {
    @Test("each committed epoch releases the counts read in its pause, not the later ones; an unpaused one none")
    func pausedCountsReleasedAtCommit() async throws {
        let machine = try MachineFactory.makeMachine(busyMachineConfiguration(megabytes: 16))
        try machine.start()
        defer { machine.shutdown() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("release-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let hooks = try ReleaseRecorder(path: path, machine: machine, logger: LogRecord().logger).hooks

        func total(_ sequence: WriterSequence) -> UInt64 { sequence.cpuStores.reduce(0, +) }
        hooks.paused(1)
        let atFirstPause = machine.writerSequence()
        await until("the writers store past the first pause") {
            total(machine.writerSequence()) > total(atFirstPause) + 1_000
        }
        hooks.paused(2)
        let atSecondPause = machine.writerSequence()
        await until("the writers store past the second pause") {
            total(machine.writerSequence()) > total(atSecondPause) + 1_000
        }
        #expect(try ReleaseLog.read(path: path).isEmpty, "nothing is released before its epoch commits")

        hooks.committed(1)
        hooks.committed(2)
        hooks.committed(3)  // never paused: nothing to release
        let records = try ReleaseLog.read(path: path)
        #expect(records.map(\.epoch) == [1, 2])
        // The CPUs run on between the pause's read and this test's: the released counts are at
        // most those, and well below what was stored by the commit.
        #expect(records.count == 2 && total(records[0].sequence) <= total(atFirstPause))
        #expect(records.count == 2 && total(records[1].sequence) <= total(atSecondPause))
        #expect(records.count == 2 && total(records[1].sequence) > total(records[0].sequence))
        #expect(records.count == 2 && atSecondPause.covers(records[1].sequence))
    }
}
