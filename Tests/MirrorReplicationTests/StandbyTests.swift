import Foundation
import MirrorReplication
import Synchronization
import Testing

/// The standby on the backup host puts the epochs in place; the primary only ships journal and
/// record, and waits for the standby's mark before reusing a half.
@Suite("The standby applies the epochs: the same guarantees, whenever either side dies")
struct StandbyTests {
    @Test("with a standby applying, the image is the last epoch's and the primary wrote nothing in place")
    func clean() throws {
        var primary = Primary(seed: 21)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let (journal, standby) = try Self.laggingStandby(primary, device)
        primary.run(journal, epochs: 6) { _ = try? standby.applyCommitted() }
        #expect(journal.committedEpoch == 6)
        #expect(try standby.applyCommitted().appliedEpoch == 6)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.memory).isEmpty)
    }

    @Test("a standby leaves alone an export whose primary applies its epochs itself: one writer of the image")
    func primaryApplies() throws {
        var primary = Primary(seed: 24)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 3)
        let writes = device.writes
        #expect(try ExportStandby(device: device, name: "test").applyCommitted().appliedEpoch == 0)
        #expect(device.writes == writes, "nothing written")
    }

    @Test("an export larger than its file as the standby opened it (grown since): refused, naming both sizes")
    func exportGrown() throws {
        var primary = Primary(seed: 26)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let (journal, standby) = try Self.laggingStandby(primary, device)
        primary.run(journal, epochs: 2) { _ = try? standby.applyCommitted() }
        // The file as the standby finds it: a block short of what the header's layout takes.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-grown-\(getpid())").path
        defer { unlink(path) }
        let short = Data(device.bytes.dropLast(4_096))
        #expect(FileManager.default.createFile(atPath: path, contents: short))
        let file = try FileExportDevice(path: path, mapped: true)
        #expect(file.mappedBytes != nil)
        #expect {
            try ExportStandby(device: file, name: path).applyCommitted()
        } throws: { error in
            "\(error)".contains(
                "takes \(primary.layout.requiredBytes) bytes, the file had \(short.count) when the standby opened it")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == short, "nothing written")
    }

    @Test("a standby that does not apply: the primary's third epoch fails, saying so, after its patience")
    func standbyBehind() throws {
        var primary = Primary(seed: 22)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let standby = ExportStandby(device: device, name: "test")
        let pauses = Counter()
        // The standby acknowledges the sync (at the first pause, before any commit) and then
        // never runs again.
        let journal = try EpochJournal(
            device: device, name: "test", layout: primary.layout, owner: Primary.owner,
            applier: .standby(
                patience: 5,
                pause: {
                    if pauses.value == 0 { _ = try? standby.applyCommitted() }
                    pauses.add()
                }))
        primary.run(journal, epochs: 4)
        #expect(journal.committedEpoch == 2, "epoch 3 needs epoch 1's half, which the standby never freed")
        #expect(pauses.value == 1 + 4)
        // What was committed can still be taken over.
        #expect(try ExportRecovery.recover(device, name: "test").epoch == 2)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[2]).isEmpty)
    }

    @Test(
        "a host failure at any write, of the primary or of the standby: the takeover finds exactly the last committed epoch"
    )
    func crashAnywhere() throws {
        var dry = Primary(seed: 23)
        let counter = CrashingDevice(size: Int(dry.layout.requiredBytes))
        let dryStandby = ExportStandby(device: counter, name: "test")
        dry.run(
            try EpochJournal(
                device: counter, name: "test", layout: dry.layout, owner: Primary.owner,
                applier: .standby(patience: 2, pause: { _ = try? dryStandby.applyCommitted() })),
            epochs: 8
        ) {}
        #expect(dry.snapshots.count == 8, "the standby kept up: every epoch committed")
        for dieAt in 1...counter.writes {
            for seed in 0..<2 as Range<UInt64> {
                var primary = Primary(seed: 23)
                let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: dieAt)
                let standby = ExportStandby(device: device, name: "test")
                // The standby runs when the primary waits for it (a standby a little behind).
                let journal = try EpochJournal(
                    device: device, name: "test", layout: primary.layout, owner: Primary.owner,
                    applier: .standby(patience: 2, pause: { _ = try? standby.applyCommitted() }))
                primary.run(journal, epochs: 8) {}
                let acknowledged = journal.committedEpoch
                var random = SplitMix(seed: seed &* 17 &+ UInt64(dieAt))
                device.crash(&random)
                do {
                    let outcome = try ExportRecovery.recover(device, name: "test")
                    #expect(outcome.epoch == acknowledged || outcome.epoch == acknowledged + 1, "died at \(dieAt)")
                    let differing = primary.differingFrames(
                        primary.image(device.bytes), primary.snapshots[Int(outcome.epoch)])
                    #expect(
                        differing.isEmpty, "died at write \(dieAt): frames \(differing) not of epoch \(outcome.epoch)")
                } catch {
                    #expect(
                        (error.kind == .noCommittedEpoch || error.kind == .notMirrord) && acknowledged == 0,
                        "died at write \(dieAt): \(error)")
                }
            }
        }
    }
}

extension StandbyTests {
    /// A journal on `device` whose standby runs only when the primary waits for it (a standby a
    /// little behind), and that standby.
    static func laggingStandby(_ primary: Primary, _ device: CrashingDevice) throws -> (EpochJournal, ExportStandby) {
        let standby = ExportStandby(device: device, name: "test")
        let journal = try EpochJournal(
            device: device, name: "test", layout: primary.layout, owner: Primary.owner,
            applier: .standby(patience: 2, pause: { _ = try? standby.applyCommitted() }))
        return (journal, standby)
    }

    @Test(
        "a new sync waits for the standby's acknowledgement; with none it fails, naming the standby, header only written"
    )
    func noAcknowledgement() throws {
        let primary = Primary(seed: 25)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let pauses = Counter()
        let journal = try EpochJournal(
            device: device, name: "test", layout: primary.layout, owner: Primary.owner,
            applier: .standby(patience: 3, pause: { pauses.add() }))
        #expect {
            try journal.beginSync()
        } throws: { error in
            let export = error as? ExportError
            return export?.kind == .standbyBehind && export?.reason.contains("mirrord standby") == true
        }
        #expect(pauses.value == 2)
        #expect(device.writes == 1, "only the header")
        // The same journal with a standby answering begins the sync.
        let (answered, _) = try Self.laggingStandby(primary, device)
        try answered.beginSync()
        #expect(try ExportStatus.read(device, layout: primary.layout)?.generation == answered.header.generation)
    }

    @Test("before it acknowledges a new sync the standby puts the previous one's committed epochs in place")
    func finishesBeforeAcknowledging() throws {
        var primary = Primary(seed: 26)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        // The standby two epochs behind at the end.
        let (journal, _) = try Self.laggingStandby(primary, device)
        primary.run(journal, epochs: 7)
        #expect(journal.committedEpoch == 7)
        #expect(try journal.imageEpoch() < 7, "the standby is behind: the image holds an earlier epoch")
        let last = try #require(primary.snapshots[7])
        #expect(!primary.differingFrames(primary.image(device.bytes), last).isEmpty, "epoch 7 not yet in place")
        // A resync: the new sync's acknowledgement comes only after epochs 6 and 7 are in place, so
        // a resync that sends only what changed since epoch 7 leaves the image right.
        try journal.beginSync()
        #expect(primary.differingFrames(primary.image(device.bytes), last).isEmpty)
        #expect(try journal.imageEpoch() == 0, "a new sync has nothing committed yet")
    }

    @Test("a resync with a standby: its epochs, numbered on from the last sync's, commit and go in place")
    func resyncNumbersRunOn() throws {
        var primary = Primary(seed: 28)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let (journal, standby) = try Self.laggingStandby(primary, device)
        primary.run(journal, epochs: 5)
        #expect(journal.committedEpoch == 5)
        // The next sync's first epoch is 6: its half last held epoch 4, of the previous sync.
        primary.run(journal, epochs: 4, from: 6)
        #expect(journal.committedEpoch == 9, "every epoch of the second sync committed")
        #expect(try standby.applyCommitted().appliedEpoch == 9)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[9]).isEmpty)
    }

    @Test(
        "a journalled frame damaged after its commit: the standby writes nothing of that epoch, read whole or in batches",
        arguments: [nil, 3] as [Int?])
    func damagedFrame(batchFrames: Int?) throws {
        var primary = Primary(seed: 29)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let standby = ExportStandby(device: device, name: "test", batchFrames: batchFrames)
        let journal = try EpochJournal(
            device: device, name: "test", layout: primary.layout, owner: Primary.owner,
            applier: .standby(patience: 2, pause: { _ = try? standby.applyCommitted() }))
        primary.run(journal, epochs: 3)
        #expect(try standby.applyCommitted().appliedEpoch == 3)
        // A new sync whose first epoch, 4, holds 10 frames (journal half 0); damage its last one,
        // which a batch of 3 reads only in its fourth batch.
        primary.run(journal, epochs: 1, from: 4)
        #expect(journal.committedEpoch == 4)
        let at = Int(primary.layout.journalOffset(half: 0, index: 9)) + 100
        try device.write([device.bytes[at] ^ 0x10], at: UInt64(at), durable: true)
        let before = device.bytes
        let writes = device.writes
        #expect {
            try standby.applyCommitted()
        } throws: { error in
            let export = error as? ExportError
            return export?.kind == .corrupt && export?.reason.contains("of committed epoch 4 does not match") == true
                && export?.reason.contains("nothing was replayed") == true
        }
        #expect(device.writes == writes && device.bytes == before, "nothing of epoch 4 written, no mark moved")
        // Mended, the epoch goes in place whole, batch after batch.
        try device.write([device.bytes[at] ^ 0x10], at: UInt64(at), durable: true)
        #expect(try standby.applyCommitted().appliedEpoch == 4)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[4]).isEmpty)
    }

    @Test("a standby leaves alone an export taken over: the running machine's image")
    func tookOver() throws {
        var primary = Primary(seed: 27)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let (journal, standby) = try Self.laggingStandby(primary, device)
        primary.run(journal, epochs: 5)
        let backup = ExportOwner(machineID: String(repeating: "b", count: 32), hostname: "backup", pid: 7, since: 9)
        _ = try ExportRecovery.recover(device, name: "test", newOwner: backup)
        // A standby whose mark says less than what the takeover replayed would put those epochs
        // in place again, under the taken-over machine: it must write nothing.
        let header = try ExportRecovery.header(of: device, name: "test")
        try device.write(
            ExportStatus(generation: header.generation, appliedEpoch: 0).encoded(), at: primary.layout.statusOffset,
            durable: true)
        let writes = device.writes
        let pass = try standby.applyCommitted()
        #expect(pass.owner == backup && pass.primaryApplies)
        #expect(device.writes == writes, "nothing written")
    }
}

/// A count that a `@Sendable` closure may add to.
final class Counter: Sendable {
    private let count = Mutex(0)
    /// The count.
    var value: Int { count.withLock { $0 } }
    /// Adds one.
    func add() { count.withLock { $0 += 1 } }
}
