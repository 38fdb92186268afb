import Foundation
import MirrorCore
import MirrorEmulation
import MirrorTestSupport
import MirrordConfig
import MirrordService
import Testing

@testable import mirrord_check

/// `mirrord-check released` on a run's output: a configuration, an image at an export's offset and
/// a release log, as the tool finds them after a takeover.
@Suite("mirrord-check released: the image against the release log", .serialized, .machineThreads)
struct ReleasedCheckTests {
    /// An export's image offset: three 4 KiB blocks of header before the frames.
    static let offset = 12_288

    /// A directory of its own, removed at the end of `body`.
    func withDirectory(_ body: (String) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "mirrord-check-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    func configuration(mmu: Bool) -> String {
        """
        [memory]
        size = "8MiB"
        [workload]
        pattern = "uniform"
        cpus = 2
        rate = "48MiB/s"
        seed = 3
        churn = "\(mmu ? "200/s" : "0/s")"
        [mmu]
        enabled = \(mmu)
        [dma]
        rate = "64MiB/s"
        block_size = "16KiB"

        """
    }

    /// Runs the machine of `configPath` until every writer has stored, and writes its memory, as
    /// a blackout found it, to `imagePath` at ``offset``; returns the sequence read there.
    func writeImage(configPath: String, imagePath: String) throws -> WriterSequence {
        let options = MachineFactory.options(for: try ConfigurationLoader.load(path: configPath))
        let machine = try EmulatedMachine(options: options)
        defer { machine.shutdown() }
        try machine.start()
        let deadline = MonotonicClock.nanoseconds() + 300_000_000_000
        while MonotonicClock.nanoseconds() < deadline {
            let now = machine.writerSequence()
            if (0..<now.writerCount).allSatisfy({ now.count(writer: $0) >= 100 }) { break }
            sched_yield()
        }
        _ = try machine.enterBlackout()
        let sequence = machine.writerSequence()
        var file = Data(count: Self.offset)
        file.append(Data(bytes: machine.active.base, count: options.memorySize))
        machine.leaveBlackout()
        #expect(FileManager.default.createFile(atPath: imagePath, contents: file))
        return sequence
    }

    @Test("ok while the log's last sequence is in the image; one line naming the lost stores when not")
    func released() throws {
        try withDirectory { dir in
            let config = dir + "/mirrord.conf"
            let image = dir + "/export.img"
            let logPath = dir + "/release.log"
            #expect(FileManager.default.createFile(atPath: config, contents: Data(configuration(mmu: false).utf8)))
            let sequence = try writeImage(configPath: config, imagePath: image)
            let log = try ReleaseLog(path: logPath)
            var earlier = sequence
            earlier.cpuStores[0] -= 50
            try log.append(epoch: 1, sequence: earlier)
            try log.append(epoch: 2, sequence: sequence)
            let check = ReleasedCheck(configPath: config, imagePath: image, offset: Self.offset, logPath: logPath)
            let ok = check.run()
            #expect(ok.status == 0, "\(ok.line)")
            #expect(ok.line.hasPrefix("released check: ok: epoch 2 released; found cpu0 "), "\(ok.line)")
            #expect(ok.line.hasSuffix("; 0 released stores lost"), "\(ok.line)")
            var exact = check
            exact.exact = true
            #expect(exact.run().status == 0)

            var beyond = sequence
            beyond.cpuStores[1] += 5
            try log.append(epoch: 3, sequence: beyond)
            let lost = check.run()
            #expect(lost.status == 1, "\(lost.line)")
            #expect(lost.line.contains("FAILED: epoch 3 released"), "\(lost.line)")
            #expect(lost.line.contains("5 released stores lost"), "\(lost.line)")

            let wrongOffset = ReleasedCheck(configPath: config, imagePath: image, offset: 0, logPath: logPath).run()
            #expect(wrongOffset.status == 1, "\(wrongOffset.line)")

            #expect(FileManager.default.createFile(atPath: config, contents: Data(configuration(mmu: true).utf8)))
            let refused = check.run()
            #expect(refused.status == ReleasedCheck.cannotRun, "\(refused.line)")
            #expect(refused.line.contains("emulated MMU"), "\(refused.line)")
        }
    }
}
