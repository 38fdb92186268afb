import Foundation
import Logging
import MirrorCore
import MirrorEmulation
import MirrorReplication
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import ServiceLifecycle
import Synchronization
import Testing

@testable import MirrordService

/// An export file written as a primary writes one: a sync from scratch, then epochs of known
/// frames committed through the journal. The memory at each committed epoch is kept.
struct ExportFixture {
    static let frameSize = 4_096
    static let primary = ExportOwner(
        machineID: String(repeating: "a", count: 32), hostname: "primary", pid: 42, since: 7)
    static let backup = ExportOwner(machineID: String(repeating: "b", count: 32), hostname: "backup", pid: 43, since: 8)

    let path: String
    let layout: ExportLayout
    /// The memory at each committed epoch (index: the epoch), when kept.
    var snapshots: [UInt64: [UInt8]] = [:]

    /// Writes the export at `path`: memory of `frameCount` frames, epochs of up to
    /// `journalFrames`, `epochs` epochs committed (each dirtying `epochFrames`, or up to
    /// `journalFrames`, random frames), the snapshots kept when `keep`; with `tearLastRecord` the
    /// primary dies writing the last epoch's commit record.
    init(
        path: String, frameCount: Int = 256, journalFrames: Int = 16, epochs: Int = 5, seed: UInt64 = 1,
        keep: Bool = true, tearLastRecord: Bool = false, epochFrames: Int? = nil
    ) throws {
        self.path = path
        layout = ExportLayout(frameSize: Self.frameSize, frameCount: frameCount, journalFrames: journalFrames)
        unlink(path)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(layout.requiredBytes)) == 0 else {
            throw ExportError(.io, "create \(path)", String(cString: strerror(errno)))
        }
        close(fd)
        let file = try FileExportDevice(path: path)
        let device = TearingDevice(file, record: layout.recordOffset(half: epochs % 2))
        let journal = try EpochJournal(device: device, name: path, layout: layout, owner: Self.primary)
        var random = SystemRandomNumberGenerator.seeded(seed)
        let bytes = frameCount * Self.frameSize
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: Self.frameSize)
        defer { memory.deallocate() }
        let words = memory.bindMemory(to: UInt64.self)
        for i in words.indices { words[i] = random.next() }
        try journal.beginSync()
        try journal.writeInPlace(frames: 0..<frameCount, of: UnsafeRawPointer(memory.baseAddress!))
        let staged = UnsafeMutableRawBufferPointer.allocate(
            byteCount: journalFrames * Self.frameSize, alignment: Self.frameSize)
        defer { staged.deallocate() }
        for epoch in 1...UInt64(max(1, epochs)) where epochs > 0 {
            var frames = Set<UInt32>()
            let count = epochFrames ?? Int.random(in: 1...journalFrames, using: &random)
            while frames.count < count { frames.insert(UInt32.random(in: 0..<UInt32(frameCount), using: &random)) }
            let list = frames.sorted()
            for (i, frame) in list.enumerated() {
                let at = Int(frame) * Self.frameSize + Int.random(in: 0..<Self.frameSize / 8, using: &random) * 8
                memory.storeBytes(of: random.next(), toByteOffset: at, as: UInt64.self)
                memcpy(
                    staged.baseAddress! + i * Self.frameSize,
                    memory.baseAddress! + at / Self.frameSize * Self.frameSize, Self.frameSize)
            }
            if keep { snapshots[epoch] = Array(memory) }
            if tearLastRecord && epoch == UInt64(epochs) {
                // The primary dies writing this epoch's record: its head lands, nothing after it.
                device.armed.withLock { $0 = true }
                #expect(throws: ExportError.self) {
                    try list.withUnsafeBufferPointer { l in
                        try journal.commit(epoch: epoch, frameList: l, staged: UnsafeRawPointer(staged.baseAddress!))
                    }
                }
                return
            }
            try list.withUnsafeBufferPointer { l in
                try journal.commit(epoch: epoch, frameList: l, staged: UnsafeRawPointer(staged.baseAddress!))
            }
        }
        try journal.flush()
    }

    /// The image the file holds now.
    func image() throws -> [UInt8] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let start = Int(layout.imageOffset)
        return Array(data[start..<start + layout.frameCount * Self.frameSize])
    }

    /// The configuration of the primary: memory of the export's size, a quiet machine.
    func configuration() -> MirrordConfiguration {
        var configuration = MirrordConfiguration()
        configuration.machine.memorySize = layout.frameCount * Self.frameSize
        configuration.machine.mmu.enabled = false
        configuration.machine.workload.churn = 0
        configuration.machine.workload.cpus = 1
        configuration.machine.workload.rate = .limited(bytesPerSecond: 1 << 20)
        configuration.machine.dma.rate = .limited(bytesPerSecond: 0)
        return configuration
    }

    /// The takeover's options for this file with its journal's staging.
    func options(recoverOnly: Bool = false) -> TakeoverOptions {
        TakeoverOptions(
            source: .image(path: path), stagingBytes: layout.journalFrames * Self.frameSize, recoverOnly: recoverOnly)
    }
}

/// The export's file, with one write that can be torn like a host dying in it: once armed, the
/// write to `record` lands its first 64 bytes only, and fails.
final class TearingDevice: ExportDevice {
    let file: FileExportDevice
    let record: UInt64
    let armed = Mutex(false)
    var size: UInt64 { file.size }

    init(_ file: FileExportDevice, record: UInt64) {
        self.file = file
        self.record = record
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        try file.read(into: buffer, at: offset)
    }

    func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError) {
        if armed.withLock({ $0 }), let torn = extents.first(where: { $0.offset == record }) {
            try file.write(UnsafeRawBufferPointer(start: torn.source, count: 64), at: torn.offset, durable: true)
            throw ExportError(.io, "write", "the host died")
        }
        try file.write(extents, durable: durable)
    }

    func flush() throws(ExportError) { try file.flush() }
}

extension SystemRandomNumberGenerator {
    /// A small seeded generator (SplitMix64) for reproducible fixtures.
    static func seeded(_ seed: UInt64) -> SeededGenerator { SeededGenerator(state: seed) }
}

/// SplitMix64.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A scratch path under the temporary directory, removed by the caller.
func scratchPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-takeover-\(getpid())-\(name).img").path
}

@Suite("mirrord takeover: the export to its last committed epoch, the machine run from it", .machineThreads)
struct TakeoverTests {
    @Test("from the image file: the active module is the last committed epoch's memory, mapped, the file unchanged")
    func fromImage() throws {
        let fixture = try ExportFixture(path: scratchPath("image"))
        defer { unlink(fixture.path) }
        let recovery = try Takeover.recover(
            fixture.options(), configuration: fixture.configuration(), owner: ExportFixture.backup)
        #expect(recovery.outcome.epoch == 5 && recovery.outcome.previousOwner == ExportFixture.primary)
        #expect(
            try ExportRecovery.header(of: FileExportDevice(path: fixture.path), name: "x").owner == ExportFixture.backup
        )
        let machine = try Takeover.makeMachine(fixture.configuration(), from: recovery)
        defer { machine.shutdown() }
        let active = Array(UnsafeRawBufferPointer(start: machine.active.base, count: machine.active.byteCount))
        let holdsEpoch = active == fixture.snapshots[5]
        #expect(holdsEpoch, "the active module holds epoch 5")
        #expect(!machine.hasSpare, "no spare: the machine runs simplex")
        // Copy-on-write: the machine's writes stay its own, the file keeps the epoch.
        memset(machine.active.base, 0x5A, 3 * ExportFixture.frameSize)
        let fileKept = try fixture.image() == fixture.snapshots[5]
        #expect(fileKept)
    }

    @Test("with the emulated MMU, the processes the machine starts with map the taken-over frames, not zeroed ones")
    func withMMU() throws {
        let fixture = try ExportFixture(path: scratchPath("mmu"), epochs: 2)
        defer { unlink(fixture.path) }
        var configuration = fixture.configuration()
        configuration.machine.mmu.enabled = true
        configuration.machine.workload.churn = 200
        let recovery = try Takeover.recover(
            fixture.options(), configuration: configuration, owner: ExportFixture.backup)
        let machine = try Takeover.makeMachine(configuration, from: recovery)
        defer { machine.shutdown() }
        let active = Array(UnsafeRawBufferPointer(start: machine.active.base, count: machine.active.byteCount))
        let holdsEpoch = active == fixture.snapshots[2]
        #expect(holdsEpoch, "the emulated kernel zero-filled taken-over frames")
    }

    @Test("over NBD semantics: the image read into anonymous memory equals the file's epoch")
    func readIntoMemory() throws {
        let fixture = try ExportFixture(path: scratchPath("read"), epochs: 3)
        defer { unlink(fixture.path) }
        let recovery = try Takeover.recover(
            fixture.options(), configuration: fixture.configuration(), owner: ExportFixture.backup)
        var configuration = fixture.configuration()
        configuration.machine.backing = .anonymous
        // The path an --export takes after its recovery: the image read through the device.
        var provided = recovery
        provided.source = .export(uri: "file-backed")
        let machine = try Takeover.makeMachine(configuration, from: provided)
        defer { machine.shutdown() }
        #expect(machine.options.activeMemory == .provided)
        let image = Array(UnsafeRawBufferPointer(start: machine.active.base, count: machine.active.byteCount))
        let holdsEpoch = image == fixture.snapshots[3]
        #expect(holdsEpoch)
    }

    @Test("--recover-only's line names the epoch and the frames replayed; a second run replays the same epoch")
    func recoverOnly() throws {
        let fixture = try ExportFixture(path: scratchPath("only"), epochs: 4)
        defer { unlink(fixture.path) }
        var first: TakeoverRecovery? = try Takeover.recover(
            fixture.options(recoverOnly: true), configuration: fixture.configuration(), owner: ExportFixture.backup)
        let line = try #require(first?.line)
        let frames = try #require(first?.outcome.framesReplayed)
        #expect(line.hasPrefix("recovered epoch 4 of \(fixture.path): \(frames) frames replayed in "))
        #expect(frames > 0)
        let replayed = try fixture.image() == fixture.snapshots[4]
        #expect(replayed)
        // While the first holds the file (as a running takeover does), a second is refused.
        #expect {
            try Takeover.recover(
                fixture.options(recoverOnly: true), configuration: fixture.configuration(), owner: ExportFixture.backup)
        } throws: { ($0 as? TakeoverRefusal)?.kind == .inUse }
        first = nil
        let again = try Takeover.recover(
            fixture.options(recoverOnly: true), configuration: fixture.configuration(), owner: ExportFixture.backup)
        #expect(again.outcome.epoch == 4, "an interrupted takeover simply runs again")
    }

    @Test("negative control: a torn last commit record takes over from the epoch before it")
    func tornLastRecord() throws {
        // The primary died writing epoch 5's record: its frames are in the journal, its record torn.
        let fixture = try ExportFixture(path: scratchPath("torn"), epochs: 5, tearLastRecord: true)
        defer { unlink(fixture.path) }
        let recovery = try Takeover.recover(
            fixture.options(), configuration: fixture.configuration(), owner: ExportFixture.backup)
        #expect(recovery.outcome.epoch == 4)
        let machine = try Takeover.makeMachine(fixture.configuration(), from: recovery)
        defer { machine.shutdown() }
        let active = Array(UnsafeRawBufferPointer(start: machine.active.base, count: machine.active.byteCount))
        let four = active == fixture.snapshots[4]
        let five = active == fixture.snapshots[5]
        #expect(four, "the image of epoch 4, not a mix with 5")
        #expect(!five)
    }

    /// Runs a takeover expected to be refused: its one line, and the file as it was.
    func refused(_ fixture: ExportFixture, configuration: MirrordConfiguration? = nil, staging: Int? = nil) throws
        -> TakeoverRefusal?
    {
        let before = try Data(contentsOf: URL(fileURLWithPath: fixture.path))
        var options = fixture.options()
        if let staging { options.stagingBytes = staging }
        do {
            _ = try Takeover.recover(
                options, configuration: configuration ?? fixture.configuration(), owner: ExportFixture.backup)
            Issue.record("not refused")
            return nil
        } catch {
            #expect(!error.description.contains("\n"), "one line")
            #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.path)) == before, "nothing changed")
            return error
        }
    }

    @Test("refused: no committed epoch (the primary died during its sync)")
    func noCommittedEpoch() throws {
        let fixture = try ExportFixture(path: scratchPath("none"), epochs: 0)
        defer { unlink(fixture.path) }
        let error = try refused(fixture)
        #expect(error?.kind == .noCommittedEpoch)
        #expect(
            error?.description.hasPrefix(
                "takeover refused: \(fixture.path): the export holds no committed epoch") == true)
    }

    @Test("refused: a damaged journal (a pending epoch's frame fails its checksum)")
    func damagedJournal() throws {
        let fixture = try ExportFixture(path: scratchPath("damaged"), epochs: 5)
        defer { unlink(fixture.path) }
        let fd = open(fixture.path, O_RDWR)
        var byte: UInt8 = 0
        let at = off_t(fixture.layout.journalOffset(half: 1, index: 0)) + 100
        _ = pread(fd, &byte, 1, at)
        byte ^= 0xFF
        _ = pwrite(fd, &byte, 1, at)
        close(fd)
        let error = try refused(fixture)
        #expect(error?.kind == .corrupt)
        #expect(error?.description.contains("of committed epoch 5 does not match its checksum") == true)
    }

    @Test("refused: an image whose frame count differs from memory.size, both named")
    func geometryMismatch() throws {
        let fixture = try ExportFixture(path: scratchPath("size"), epochs: 1)
        defer { unlink(fixture.path) }
        var configuration = fixture.configuration()
        configuration.machine.memorySize = 2 << 20
        let error = try refused(fixture, configuration: configuration)
        #expect(
            error?.description
                == "takeover refused: \(fixture.path): the export's image is 256 frames of 4096 bytes (1MiB); "
                + "memory.size is 2MiB (512 frames of 4096 bytes): take over with the primary's configuration; "
                + "nothing was changed")
        let staging = try refused(fixture, staging: 256 << 20)
        #expect(staging?.description.contains("the export's journal holds epochs of 16 frames (staging 64KiB)") == true)
    }

    @Test("refused: a missing file, and a file that is not an export")
    func missing() throws {
        let path = scratchPath("missing")
        let fixture = try ExportFixture(path: path, epochs: 1)
        unlink(path)
        #expect {
            _ = try Takeover.recover(fixture.options(), configuration: fixture.configuration())
        } throws: { error in
            "\(error)" == "takeover refused: open \(path): No such file or directory"
        }
        let empty = scratchPath("empty")
        #expect(FileManager.default.createFile(atPath: empty, contents: Data(count: 65_536)))
        defer { unlink(empty) }
        var options = fixture.options()
        options.source = .image(path: empty)
        #expect {
            _ = try Takeover.recover(options, configuration: fixture.configuration())
        } throws: { error in
            (error as? TakeoverRefusal)?.kind == .notMirrord
        }
    }

    @Test("the service starts simplex: READY=1, the status, the journal entry with its fields; a stop works")
    func service() async throws {
        let fixture = try ExportFixture(path: scratchPath("service"), epochs: 2)
        defer { unlink(fixture.path) }
        let options = fixture.options()
        let recovery = try Takeover.recover(
            options, configuration: fixture.configuration(), owner: ExportFixture.backup)
        let machine = try Takeover.makeMachine(fixture.configuration(), from: recovery)
        let log = LogRecord()
        let notifications = NotificationLog()
        let start = DuplexService.TakeoverStart(
            epoch: recovery.outcome.epoch, framesReplayed: recovery.outcome.framesReplayed, source: fixture.path,
            startedAt: options.startedAt)
        let service = DuplexService(
            machine: machine, configuration: RunningConfiguration(path: nil, configuration: fixture.configuration()),
            mode: .daemon, start: .takeover(start), logger: log.logger, notifier: notifications.notifier())
        let group = ServiceGroup(services: [service], logger: log.logger)
        let running = Task { try await group.run() }
        await until("the service took over") { service.state.name == .simplex }
        #expect(service.state == .simplex(.tookOver(epoch: 2, source: fixture.path)))
        #expect(notifications.values("READY") == ["1"])
        let status = try #require(notifications.values("STATUS").first)
        #expect(status.hasPrefix("simplex: took over from epoch 2 of \(fixture.path) ("), "\(status)")
        let entry = try #require(log.all.first { $0.metadata["message_id"] == MessageID.tookOver.rawValue })
        #expect(
            entry.metadata["epoch"] == "2" && entry.metadata["frames_replayed"] == "\(recovery.outcome.framesReplayed)")
        #expect(Double(entry.metadata["takeover_ms"] ?? "") != nil)
        #expect(service.lifecycle.duplexes == 0, "no duplex: nothing to duplex to")
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(log.all.contains { $0.message == "stopped in state simplex" })
    }
}

/// Writes a full-size export for measuring `mirrord takeover` by hand (docs/design/remote.md):
/// `MIRRORD_TAKEOVER_EXPORT=/dev/shm/spare.img swift test --filter MirrordServiceTests.TakeoverExport`
/// writes 1 GiB of memory and two epochs (of `MIRRORD_TAKEOVER_EPOCH_FRAMES` frames each, else of
/// up to 65,536) with a 256 MiB staging area (the defaults), then
/// `mirrord takeover --image /dev/shm/spare.img` takes over from it. Skipped without the variable.
@Suite("A full-size export for measuring the takeover")
struct TakeoverExport {
    @Test(
        "writes the export named by MIRRORD_TAKEOVER_EXPORT",
        .enabled(if: ProcessInfo.processInfo.environment["MIRRORD_TAKEOVER_EXPORT"] != nil))
    func write() throws {
        let path = try #require(ProcessInfo.processInfo.environment["MIRRORD_TAKEOVER_EXPORT"])
        let environment = ProcessInfo.processInfo.environment
        let frames = (Int(environment["MIRRORD_TAKEOVER_MEMORY"] ?? "") ?? 1 << 30) / 4_096
        let fixture = try ExportFixture(
            path: path, frameCount: frames, journalFrames: TakeoverOptions.defaultStagingBytes / 4_096, epochs: 2,
            keep: false, epochFrames: environment["MIRRORD_TAKEOVER_EPOCH_FRAMES"].flatMap { Int($0) })
        #expect(fixture.layout.requiredBytes > UInt64(frames * 4_096))
    }
}
