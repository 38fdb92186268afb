import Foundation
import MirrorCore
import MirrorEmulation
import MirrorReplication
import MirrorTestSupport
import Synchronization
import Testing

/// The engine's duplex to a spare on another host, against an export file: the sync, epochs while
/// the CPUs and the DMA engine write, a clean stop, and the takeover of what it left.
@Suite("A duplex to a spare on another host: epochs, a clean stop, the takeover", .serialized, .machineThreads)
struct RemoteDuplexTests {
    static let owner = ExportOwner(machineID: String(repeating: "e", count: 32), hostname: "primary", pid: 9, since: 1)
    static let backup = ExportOwner(machineID: String(repeating: "f", count: 32), hostname: "backup", pid: 2, since: 3)

    /// 16 MiB with a hot set, CPUs and DMA both writing; staging of 4 MiB (1,024 frames).
    static func options(seed: UInt64) -> EmulatedMachine.Options {
        var options = EmulatedMachine.Options()
        options.memorySize = 16 << 20
        options.workload.pattern = .hotset
        options.workload.seed = seed
        options.workload.rate = .limited(bytesPerSecond: 48 << 20)
        options.dma.rate = .limited(bytesPerSecond: 64 << 20)
        options.dma.blockSize = 16 << 10
        options.mmu.enabled = false
        return options
    }

    static let replication = ReplicationPolicy(epochNanoseconds: 5_000_000, stagingBytes: 4 << 20)

    /// An export file for `machine`, in the temporary directory, sized for it and its journal.
    struct Export {
        let path: String
        let layout: ExportLayout

        init(for machine: EmulatedMachine) throws {
            layout = ExportLayout(
                frameSize: machine.geometry.frameSize, frameCount: machine.geometry.frameCount,
                journalFrames: RemoteDuplexTests.replication.epochCapacity(frameSize: machine.geometry.frameSize))
            path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-remote-\(UUID()).img").path
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: layout.requiredBytes)
            try handle.close()
        }

        func spare() throws -> ExportSpare {
            let journal = try EpochJournal(
                device: try FileExportDevice(path: path), name: path, layout: layout, owner: RemoteDuplexTests.owner)
            let path = self.path
            return ExportSpare(journal: journal, owner: RemoteDuplexTests.owner) {
                () throws(ExportError) -> any ExportDevice in try FileExportDevice(path: path)
            }
        }

        /// Frames of the image that differ from `memory`.
        func differingFrames(from memory: UnsafeRawPointer, frameCount: Int) throws -> [Int] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return data.withUnsafeBytes { raw in
                let image = raw.baseAddress! + Int(layout.imageOffset)
                return (0..<frameCount).filter { frame in
                    memcmp(image + frame * layout.frameSize, memory + frame * layout.frameSize, layout.frameSize) != 0
                }
            }
        }

        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Runs a sync and `epochs` epochs, then a clean stop; returns the duplex's summary and how
    /// replication ended. The machine is left stopped (in the last epoch's blackout).
    static func replicate(
        _ machine: EmulatedMachine, to spare: ExportSpare, policy: DuplexPolicy, epochs: UInt64
    ) -> (DuplexSummary, ReplicationEnd?) {
        let engine = DuplexEngine(hardware: machine, policy: policy, spare: spare, replication: replication)
        let summary = engine.run()
        guard summary.outcome.isReplicating else { return (summary, nil) }
        let reports = Mutex<[EpochReport]>([])
        let end = engine.replicate { event in
            guard case .epochCommitted(let report) = event else { return }
            reports.withLock { $0.append(report) }
            // The stop is asked for from the epochs themselves: no clock in the test.
            if report.epoch >= epochs { engine.stopToken.requestStop() }
        }
        let committed = reports.withLock { $0.map(\.epoch) }
        #expect(committed.first == 2 && committed == Array(2..<(2 + UInt64(committed.count))), "\(end.message)")
        return (summary, end)
    }

    @Test(
        "sync, 12 epochs under CPU and DMA writes, a clean stop: the export equals memory; the takeover finds the last epoch"
    )
    func cleanStop() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 3))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }

        let (summary, end) = Self.replicate(
            machine, to: try export.spare(), policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), epochs: 12)
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        #expect(summary.firstEpoch?.epoch == 1)
        #expect(summary.verify == nil, "no lockstep verify with a spare on another host")
        let ended = try #require(end)
        #expect(ended.reason == .stopped, "\(ended.message)")
        #expect(ended.lastCommittedEpoch >= 12)
        #expect(machine.isInBlackout, "a clean stop leaves every CPU stopped")

        let memory = try #require(machine.activeMemory)
        #expect(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty)

        // The backup host's takeover: nothing left to replay, the image is the last epoch.
        let outcome = try ExportRecovery.recover(
            try FileExportDevice(path: export.path), name: export.path, newOwner: Self.backup)
        #expect(outcome.epoch == ended.lastCommittedEpoch)
        #expect(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test("negative control: DMA untracked (dma.dual_write = false), DMA's writes never reach the spare")
    func dmaUntracked() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 5))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }

        var policy = DuplexPolicy(thresholdFrames: 256, maxPasses: 20)
        policy.dmaDualWrite = false
        let (summary, end) = Self.replicate(machine, to: try export.spare(), policy: policy, epochs: 12)
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        let ended = try #require(end)
        // Either the read-back caught a frame nothing tracked, or the stopped machine differs.
        if ended.reason == .stopped {
            let memory = try #require(machine.activeMemory)
            #expect(!(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty))
        } else {
            #expect(ended.reason == .readBackMismatch, "\(ended.message)")
        }
    }
}
