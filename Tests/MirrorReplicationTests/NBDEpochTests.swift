import Foundation
import MirrorNBD
import MirrorReplication
import Testing

/// The epochs shipped through a real `nbd-server`, and the takeover run on the file behind it, as
/// the backup host would.
@Suite("Epochs through a real nbd-server; the takeover on the file behind it")
struct NBDEpochTests {
    @Test("a sync and eight epochs over nbd+unix: the file then replays to the last epoch, owned by the backup")
    func throughServer() throws {
        var primary = Primary(frameCount: 512, journalFrames: 64, seed: 11)
        let server = try NBDLocalServer(size: Int(primary.layout.requiredBytes))
        let device = try NBDExportDevice(uri: server.uri)
        #expect(device.size == primary.layout.requiredBytes)
        let journal = try EpochJournal(device: device, name: server.uri, layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 8)
        #expect(journal.committedEpoch == 8)

        // The backup host: the file itself, not the network.
        let file = try FileExportDevice(path: server.file.path)
        let backup = ExportOwner(machineID: String(repeating: "d", count: 32), hostname: "backup", pid: 2, since: 3)
        let outcome = try ExportRecovery.recover(file, name: server.file.path, newOwner: backup)
        #expect(outcome.epoch == 8 && outcome.previousOwner == Primary.owner)
        let image = primary.image(try server.fileBytes())
        #expect(primary.differingFrames(image, primary.snapshots[8]).isEmpty)

        // The former primary is refused at the export now that the backup owns it.
        #expect {
            _ = try EpochJournal(device: device, name: server.uri, layout: primary.layout, owner: Primary.owner)
        } throws: { ($0 as? ExportError)?.kind == .owned }
    }

    @Test("the probe over NBD, beside the primary's own connection: its newest epoch, the file unchanged")
    func probeThroughServer() throws {
        var primary = Primary(frameCount: 256, journalFrames: 32, seed: 12)
        let server = try NBDLocalServer(size: Int(primary.layout.requiredBytes))
        let device = try NBDExportDevice(uri: server.uri)
        let journal = try EpochJournal(device: device, name: server.uri, layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 6)
        try journal.flush()
        let before = try server.fileBytes()
        // A second client, as the peer's agent is: the primary stays connected meanwhile.
        let probe = try ExportProbe.read(
            try NBDExportDevice(uri: server.uri, stallTimeout: .seconds(5)), name: server.uri)
        #expect(probe.newest?.epoch == 6 && probe.header?.generation == journal.header.generation)
        #expect(try server.fileBytes() == before, "the probe wrote nothing")
        let file = try ExportProbe.read(try FileExportDevice(path: server.file.path, readOnly: true), name: "file")
        #expect(file == probe, "the file behind the server reads the same")
    }

    @Test("a URI that does not parse, and no server: one clear error each")
    func badURIs() {
        #expect { _ = try NBDExportDevice(uri: "nbd://[::1/spare") } throws: { error in
            (error as? ExportError)?.description.contains("nbd://[::1/spare") == true
        }
        #expect { _ = try NBDExportDevice(uri: "nbd+unix:///spare?socket=/nonexistent/mirrord.sock") } throws: {
            error in
            (error as? ExportError)?.kind == .io
        }
    }

    @Test("a device on a stalled server fails its flush, its read and a new connect within its stall timeout")
    func stalledServer() throws {
        let server = try NBDLocalServer(size: 1 << 20)
        let device = try NBDExportDevice(uri: server.uri, stallTimeout: .milliseconds(200))
        // The device hands its timeout to the export; without it the calls below would block.
        try #require(device.export.stallTimeout == .milliseconds(200))
        try device.flush()
        try server.signalGroup(SIGSTOP)
        defer { try? server.signalGroup(SIGCONT) }
        let timedOut = { (error: any Error) in
            (error as? ExportError).map { $0.kind == .io && $0.reason == "no answer from the server within 200 ms" }
                ?? false
        }
        let start = ContinuousClock.now
        #expect(performing: { try device.flush() }, throws: timedOut)
        #expect(
            performing: { _ = try NBDExportDevice(uri: server.uri, stallTimeout: .milliseconds(200)) },
            throws: timedOut)
        #expect(ContinuousClock.now - start < .seconds(10))
        // The flush is still in flight: the device refuses a read with the flush's error.
        var bytes = [UInt8](repeating: 0, count: 4096)
        #expect {
            try bytes.withUnsafeMutableBytes { try device.read(into: $0, at: 0) }
        } throws: { error in
            timedOut(error) && (error as? ExportError)?.operation == "flush \(server.uri)"
        }
    }
}
