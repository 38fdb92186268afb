import Foundation
import MirrorReplication
import MirrordConfig
import Testing

@testable import MirrordService

/// `mirrord probe` on an export file: the newest committed epoch the takeover would recover, its
/// line and JSON, and the file byte for byte as it was.
@Suite("mirrord probe: an export's newest committed epoch, the file untouched")
struct ProbeRunnerTests {
    /// Probes `fixture`'s file and checks that not a byte of it changed.
    func probeUnchanged(_ path: String) throws -> ExportProbe {
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let probe = try ProbeRunner.probe(
            .image(path: path), configuration: MirrordConfiguration(), timeout: .seconds(5))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the probe changed the file")
        return probe
    }

    @Test("the newest committed epoch, as the takeover then recovers it; the file byte for byte as it was")
    func committed() throws {
        let fixture = try ExportFixture(path: scratchPath("probe"), epochs: 5, keep: false)
        defer { unlink(fixture.path) }
        // A pending epoch whose frames are not yet in place (the primary died before its step 4):
        // the takeover would write them, the probe must not.
        let probe = try probeUnchanged(fixture.path)
        let frame = try #require(probe.pending.last).record
        let fd = open(fixture.path, O_RDWR)
        var scribble = [UInt8](repeating: 0xA5, count: 64)
        let at = off_t(fixture.layout.imageOffset(frame: Int(try firstFrame(of: frame, fixture))))
        #expect(pwrite(fd, &scribble, scribble.count, at) == scribble.count)
        close(fd)
        let again = try probeUnchanged(fixture.path)
        #expect(again == probe)
        #expect(probe.newest?.epoch == 5)
        #expect(probe.header?.owner == ExportFixture.primary)
        let line = ProbeRunner.line(probe)
        #expect(
            line
                == "epoch=5 generation=\(probe.header!.generation) owner=primary machine_id=\(ExportFixture.primary.machineID) "
                + "pending=\(probe.pending.count)")
        let json = ProbeRunner.json(probe, source: .image(path: fixture.path))
        #expect(json.contains("\"epoch\" : 5") && json.contains("\"generation\" : \(probe.header!.generation)"))
        #expect(json.contains("\"hostname\" : \"primary\"") && json.contains("\"header\" : true"))
        // Negative control: the takeover's recovery of the same file does change it (it puts the
        // pending epoch in place and writes its new owner), at the probe's epoch.
        let before = try Data(contentsOf: URL(fileURLWithPath: fixture.path))
        let recovery = try Takeover.recover(
            fixture.options(recoverOnly: true), configuration: fixture.configuration(), owner: ExportFixture.backup)
        #expect(recovery.outcome.epoch == 5 && recovery.outcome.generation == probe.header?.generation)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.path)) != before, "the takeover wrote")
    }

    /// The first frame entry of `record` in its journal half.
    func firstFrame(of record: EpochRecord, _ fixture: ExportFixture) throws -> UInt32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture.path))
        let at = Int(fixture.layout.recordOffset(half: Int(record.epoch % 2))) + EpochRecord.headerBytes
        return data[at..<at + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    @Test("a torn last commit record: the epoch before it, as the takeover finds")
    func torn() throws {
        let fixture = try ExportFixture(path: scratchPath("probe-torn"), epochs: 5, tearLastRecord: true)
        defer { unlink(fixture.path) }
        #expect(try probeUnchanged(fixture.path).newest?.epoch == 4)
    }

    @Test("no committed epoch: epoch=none, exit 2; a blank file: generation=0 owner=none")
    func none() throws {
        let fixture = try ExportFixture(path: scratchPath("probe-none"), epochs: 0)
        defer { unlink(fixture.path) }
        let probe = try probeUnchanged(fixture.path)
        #expect(probe.newest == nil && probe.header != nil)
        #expect(ProbeRunner.line(probe).hasPrefix("epoch=none generation=\(probe.header!.generation) owner=primary "))
        #expect(ProbeRunner.json(probe, source: .image(path: fixture.path)).contains("\"epoch\" : null"))
        #expect(
            ProbeRunner.run(.image(path: fixture.path), configPath: nil, json: false, timeout: .seconds(1))
                == .noCommittedEpoch)
        let blank = scratchPath("probe-blank")
        defer { unlink(blank) }
        #expect(FileManager.default.createFile(atPath: blank, contents: Data(count: 64 << 10)))
        let nothing = try probeUnchanged(blank)
        #expect(nothing.header == nil)
        #expect(ProbeRunner.line(nothing) == "epoch=none generation=0 owner=none machine_id=none pending=0")
    }

    @Test("exit statuses: 0 a committed epoch, 1 a missing file, data not mirrord's, or no NBD server")
    func exitStatuses() throws {
        let fixture = try ExportFixture(path: scratchPath("probe-exit"), epochs: 2, keep: false)
        defer { unlink(fixture.path) }
        #expect(
            ProbeRunner.run(.image(path: fixture.path), configPath: nil, json: true, timeout: .seconds(1)) == .committed
        )
        #expect(
            ProbeRunner.run(
                .image(path: scratchPath("probe-missing")), configPath: nil, json: false, timeout: .seconds(1))
                == .failure)
        let foreign = scratchPath("probe-foreign")
        defer { unlink(foreign) }
        #expect(FileManager.default.createFile(atPath: foreign, contents: Data("ext4?".utf8) + Data(count: 16 << 10)))
        #expect(ProbeRunner.run(.image(path: foreign), configPath: nil, json: false, timeout: .seconds(1)) == .failure)
        // Nothing listens on port 1 of the loopback: refused at once.
        #expect(
            ProbeRunner.run(.export(uri: "nbd://127.0.0.1:1/spare"), configPath: nil, json: false, timeout: .seconds(1))
                == .failure)
    }

    @Test("the file is opened read-only: a write through the probe's device is refused")
    func readOnly() throws {
        let fixture = try ExportFixture(path: scratchPath("probe-ro"), epochs: 1, keep: false)
        defer { unlink(fixture.path) }
        let device = try FileExportDevice(path: fixture.path, readOnly: true)
        #expect(throws: ExportError.self) { try device.write([1, 2, 3], at: 0, durable: false) }
    }
}
