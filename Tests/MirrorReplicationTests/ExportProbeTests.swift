import MirrorReplication
import Testing

/// The probe of an export: the newest committed epoch a takeover would find, read without writing,
/// and an order between two exports that puts the later sync's epoch after the earlier one's.
@Suite("The export's probe: the takeover's newest committed epoch, nothing written")
struct ExportProbeTests {
    /// Another host: the backup that takes over, or the other primary of the pair.
    static let backup = ExportOwner(machineID: String(repeating: "b", count: 32), hostname: "backup", pid: 9, since: 8)

    @Test("the probe finds the epoch the takeover then recovers, and writes nothing")
    func sameEpochAsRecovery() throws {
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 3)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 5)
        let before = device.bytes
        let writes = device.writes
        let probe = try ExportProbe.read(device, name: "x")
        #expect(device.writes == writes && device.bytes == before, "the probe wrote nothing")
        #expect(probe.newest?.epoch == 5)
        #expect(probe.header?.generation == journal.header.generation)
        #expect(probe.header?.owner == Primary.owner)
        #expect(probe.committed.map(\.record.epoch) == [4, 5], "both halves, oldest first")
        #expect(probe.pending.map(\.record.epoch) == [5], "epoch 4 was in place when 5 committed")
        #expect(probe.position == ExportProbe.Position(generation: journal.header.generation, epoch: 5))
        // Negative control: the takeover on the same device writes (its new owner), and finds the
        // probe's epoch.
        let outcome = try ExportRecovery.recover(device, name: "x", newOwner: Self.backup)
        #expect(outcome.epoch == 5 && outcome.generation == probe.header?.generation)
        #expect(device.writes > writes && device.bytes != before, "the takeover did write: the check can see writes")
    }

    @Test("no committed epoch: a blank export (no header) and a sync that never committed")
    func noCommittedEpoch() throws {
        let layout = ExportLayout(frameSize: 4_096, frameCount: 64, journalFrames: 8)
        let blank = CrashingDevice(size: Int(layout.requiredBytes))
        let nothing = try ExportProbe.read(blank, name: "x")
        #expect(nothing.header == nil && nothing.newest == nil && nothing.position == nil)
        #expect(blank.writes == 0)
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 4)
        let device = CrashingDevice(size: Int(layout.requiredBytes))
        primary.run(try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner), epochs: 3)
        // A new sync from scratch (the primary restarted) that died before its first commit: the
        // old sync's records are stale and never count.
        try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner).beginSync()
        let synced = try ExportProbe.read(device, name: "x")
        #expect(synced.header != nil && synced.newest == nil && synced.position == nil)
        #expect(synced.committed.isEmpty && synced.pending.isEmpty)
    }

    @Test("a torn newest record: the probe reports the epoch before it, as the takeover does")
    func tornRecord() throws {
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 5)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        primary.run(
            try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner), epochs: 4)
        // Epoch 4's record (half 0) torn: a byte of its entries changed, its checksum no longer matches.
        let at = Int(primary.layout.recordOffset(half: 0)) + EpochRecord.headerBytes + 3
        try device.write([device.bytes[at] ^ 0x40], at: UInt64(at), durable: true)
        let probe = try ExportProbe.read(device, name: "x")
        #expect(probe.newest?.epoch == 3)
        #expect(try ExportRecovery.recover(device, name: "x").epoch == 3)
    }

    @Test("refused: data that is not mirrord's, and an export smaller than its header says")
    func refusals() throws {
        let layout = ExportLayout(frameSize: 4_096, frameCount: 64, journalFrames: 8)
        let foreign = CrashingDevice(size: Int(layout.requiredBytes))
        try foreign.write(Array("not an export".utf8), at: 100, durable: true)
        #expect { _ = try ExportProbe.read(foreign, name: "x") } throws: {
            ($0 as? ExportError)?.kind == .notMirrord && ($0 as? ExportError)?.operation == "probe x"
        }
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 6)
        let device = CrashingDevice(size: Int(layout.requiredBytes))
        primary.run(try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner), epochs: 2)
        let cut = CrashingDevice(size: Int(layout.requiredBytes) - 4_096)
        try cut.write(Array(device.bytes[0..<8_192]), at: 0, durable: true)
        #expect { _ = try ExportProbe.read(cut, name: "x") } throws: {
            ($0 as? ExportError)?.kind == .tooSmall
        }
    }

    /// The hole the probe closes in the cluster: host A replicated to B's export, then B to A's;
    /// A's export was created (its header first written) before B's. The later sync must order
    /// after the earlier one whichever export was created first: generations are the wall clock
    /// of each sync's start, not a count from the export's creation.
    @Test("a later sync to the other export orders after the earlier one, whichever export is older")
    func laterSyncIsNewer() throws {
        var first = Primary(frameCount: 64, journalFrames: 8, seed: 7)
        let older = CrashingDevice(size: Int(first.layout.requiredBytes))
        let newer = CrashingDevice(size: Int(first.layout.requiredBytes))
        // The older export gets its header (and a first sync) before the newer export exists.
        first.run(try EpochJournal(device: older, name: "a", layout: first.layout, owner: Primary.owner), epochs: 9)
        var second = Primary(frameCount: 64, journalFrames: 8, seed: 8)
        second.run(
            try EpochJournal(device: newer, name: "b", layout: first.layout, owner: Self.backup), epochs: 2,
            from: 10)
        // Then the older export is synced again, later: its few epochs are the newest memory.
        var third = Primary(frameCount: 64, journalFrames: 8, seed: 9)
        third.run(
            try EpochJournal(device: older, name: "a", layout: first.layout, owner: Primary.owner), epochs: 1,
            from: 20)
        let a = try #require(try ExportProbe.read(older, name: "a").position)
        let b = try #require(try ExportProbe.read(newer, name: "b").position)
        #expect(b < a, "the older export's later sync (\(a)) is newer than the other's (\(b))")
        #expect(
            ExportProbe.Position(generation: 5, epoch: 9) < ExportProbe.Position(generation: 6, epoch: 1),
            "the generation first, then the epoch")
        #expect(ExportProbe.Position(generation: 6, epoch: 1) < ExportProbe.Position(generation: 6, epoch: 2))
    }
}
