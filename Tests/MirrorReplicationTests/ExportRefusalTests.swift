import Foundation
import MirrorReplication
import Testing

/// Bad exports get one clear error each, and nothing is written to them.
@Suite("The export: refused clearly when it cannot be used, the header and records whole or not at all")
struct ExportRefusalTests {
    let layout = ExportLayout(frameSize: 4_096, frameCount: 64, journalFrames: 8)

    @Test("an export smaller than memory plus journal is refused, naming both sizes")
    func tooSmall() {
        let device = CrashingDevice(size: Int(layout.requiredBytes) - 4_096)
        #expect {
            _ = try EpochJournal(device: device, name: "nbd://b/spare", layout: layout, owner: Primary.owner)
        } throws: { error in
            let e = error as? ExportError
            return e?.kind == .tooSmall && e?.description.contains("\(layout.requiredBytes - 4_096) bytes") == true
                && e?.description.contains("needs \(layout.requiredBytes) bytes") == true
                && e?.description.hasPrefix("open nbd://b/spare: ") == true
        }
    }

    @Test("an export holding someone else's data is refused and left as it was")
    func foreign() throws {
        let device = CrashingDevice(size: Int(layout.requiredBytes))
        let filesystem: [UInt8] = Array("\u{53}\u{EF}ext4 superblock".utf8)
        try device.write(filesystem, at: 1_024, durable: true)
        #expect(throws: ExportError.self) {
            _ = try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner)
        }
        #expect(device.writes == 1, "nothing written past the refusal")
    }

    @Test("an export another host's primary owns is refused, naming that primary; the same host may reuse it")
    func owned() throws {
        let device = CrashingDevice(size: Int(layout.requiredBytes))
        let first = try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner)
        try first.beginSync()
        let generation = first.header.generation
        let other = ExportOwner(machineID: String(repeating: "b", count: 32), hostname: "intruder", pid: 7, since: 9)
        #expect {
            _ = try EpochJournal(device: device, name: "x", layout: layout, owner: other)
        } throws: { error in
            let e = error as? ExportError
            return e?.kind == .owned && e?.reason.contains("primary (machine-id aaaaaaaaaaaa…, pid 42)") == true
        }
        let restarted = ExportOwner(machineID: Primary.owner.machineID, hostname: "primary", pid: 43, since: 10)
        let again = try EpochJournal(device: device, name: "x", layout: layout, owner: restarted)
        try again.beginSync()
        #expect(again.header.generation > generation, "a new sync from scratch, its earlier records stale")
        // A host that took over from the owner (stopped for that takeover) may claim it: a
        // second failover replicates back to the export the first one's host owned.
        let claimed = try EpochJournal(
            device: device, name: "x", layout: layout, owner: other, tookOverFrom: Primary.owner)
        try claimed.beginSync()
        #expect(claimed.header.owner == other)
    }

    @Test("this host as an owner: its machine-id (when it has one), its name, this process")
    func localOwner() throws {
        let owner = ExportOwner.local()
        #expect(owner.pid == getpid() && !owner.hostname.isEmpty && owner.since > 0)
        if let id = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8) {
            #expect(owner.machineID == id.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(owner.isSameHost(as: ExportOwner.local()), "the same host twice")
    }

    @Test("a takeover after a takeover: the new owner is written, and the former primary is then refused")
    func takeoverOwns() throws {
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 5)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        primary.run(
            try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner), epochs: 2)
        let backup = ExportOwner(machineID: String(repeating: "c", count: 32), hostname: "backup", pid: 1, since: 11)
        let outcome = try ExportRecovery.recover(device, name: "x", newOwner: backup)
        #expect(outcome.epoch == 2 && outcome.previousOwner == Primary.owner)
        #expect(throws: ExportError.self) {
            _ = try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner)
        }
        #expect(try ExportRecovery.recover(device, name: "x").epoch == 2, "a takeover run again changes nothing")
    }

    @Test("an export given back by zeroing its header: the old sync's commit records are never replayed")
    func zeroedHeader() throws {
        var primary = Primary(seed: 9)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        primary.run(
            try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner), epochs: 3)
        try device.write([UInt8](repeating: 0, count: 8_192), at: 0, durable: true)
        let next = try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner)
        try next.beginSync()
        // Killed during its full copy: the records of the old sync behind the header must not count.
        #expect {
            _ = try ExportRecovery.recover(device, name: "x")
        } throws: { ($0 as? ExportError)?.kind == .noCommittedEpoch }
    }

    @Test("a torn header slot leaves the other standing; both torn is refused")
    func tornHeader() throws {
        let device = CrashingDevice(size: Int(layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner)
        try journal.beginSync()
        let generation = journal.header.generation
        try journal.beginSync()  // sequence 2, slot 0; sequence 1 is in slot 1
        var block = device.bytes[0..<4_096].map { $0 }
        block[100] ^= 0xFF
        try device.write(block, at: 0, durable: true)
        let reopened = try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner)
        #expect(reopened.header.generation == generation, "the older slot's header, the first generation")
        var other = device.bytes[4_096..<8_192].map { $0 }
        other[200] ^= 0xFF
        try device.write(other, at: 4_096, durable: true)
        #expect {
            _ = try EpochJournal(device: device, name: "x", layout: layout, owner: Primary.owner)
        } throws: { ($0 as? ExportError)?.reason.contains("damaged") == true }
    }

    @Test(
        "no committed epoch: the takeover says why; a journalled frame damaged after its commit: refused, nothing written"
    )
    func recoveryRefusals() throws {
        let layout = Primary(frameCount: 64, journalFrames: 8, seed: 9).layout
        let blank = CrashingDevice(size: Int(layout.requiredBytes))
        #expect { _ = try ExportRecovery.recover(blank, name: "x") } throws: {
            ($0 as? ExportError)?.kind == .notMirrord
        }
        let synced = CrashingDevice(size: Int(layout.requiredBytes))
        try EpochJournal(device: synced, name: "x", layout: layout, owner: Primary.owner).beginSync()
        #expect { _ = try ExportRecovery.recover(synced, name: "x") } throws: {
            ($0 as? ExportError)?.kind == .noCommittedEpoch
                && ($0 as? ExportError)?.reason.contains("before its first epoch committed") == true
        }
        // Epoch 3, in half 1, damaged: alone pending, and (a clean stop that cut epoch 2 short)
        // with epoch 2 pending before it, which is not written either.
        for ending in [Primary.Ending.inPlace, .cutShort(afterBatches: 0)] {
            var primary = Primary(frameCount: 64, journalFrames: 8, seed: 9)
            let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
            primary.run(
                try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner), epochs: 3,
                ending: ending)
            let pending = try ExportProbe.read(device, name: "x").pending.map(\.record.epoch)
            #expect(pending == (ending == .inPlace ? [3] : [2, 3]))
            let at = Int(primary.layout.journalOffset(half: 1, index: 0)) + 17
            try device.write([device.bytes[at] ^ 0x01], at: UInt64(at), durable: true)
            let before = device.bytes
            let writes = device.writes
            #expect { _ = try ExportRecovery.recover(device, name: "x") } throws: {
                ($0 as? ExportError)?.kind == .corrupt
                    && ($0 as? ExportError)?.reason.contains("of committed epoch 3 does not match its checksum") == true
            }
            #expect(device.writes == writes && device.bytes == before, "nothing of \(pending) was replayed")
        }
    }

    @Test("after a failed write the journal refuses every later write until a new sync starts")
    func brokenUntilNewSync() throws {
        var primary = Primary(frameCount: 64, journalFrames: 8, seed: 31)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: 30)
        let journal = try EpochJournal(device: device, name: "x", layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 6)
        let reached = journal.committedEpoch
        let generation = journal.header.generation
        var random = SplitMix(seed: 1)
        device.crash(&random)  // the link is back
        let frame: [UInt32] = [0]
        let staged = [UInt8](repeating: 7, count: 4_096)
        #expect {
            try frame.withUnsafeBufferPointer { list in
                try staged.withUnsafeBytes {
                    try journal.commit(epoch: reached + 1, frameList: list, staged: $0.baseAddress!)
                }
            }
        } throws: { ($0 as? ExportError)?.reason.contains("an earlier write failed") == true }
        try journal.beginSync()
        #expect(
            journal.header.generation > generation && journal.committedEpoch == 0, "a new sync from scratch works")
    }
}
