import MirrorReplication
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small primary: memory of `frameCount` frames that its epochs change, shipped to `device`.
struct Primary {
    static let frameSize = 4_096
    static let owner = ExportOwner(machineID: String(repeating: "a", count: 32), hostname: "primary", pid: 42, since: 7)
    let layout: ExportLayout
    var memory: [UInt8]
    /// The memory at each committed epoch (index = epoch).
    var snapshots: [Int: [UInt8]] = [:]
    /// The frames of each epoch (index = epoch).
    var frameLists: [Int: [UInt32]] = [:]
    var random: SplitMix

    init(frameCount: Int = 96, journalFrames: Int = 16, seed: UInt64) {
        layout = ExportLayout(frameSize: Self.frameSize, frameCount: frameCount, journalFrames: journalFrames)
        var random = SplitMix(seed: seed)
        var memory = [UInt8](repeating: 0, count: frameCount * Self.frameSize)
        memory.withUnsafeMutableBytes { raw in
            for word in 0..<raw.count / 8 { raw.storeBytes(of: random.next(), toByteOffset: word * 8, as: UInt64.self) }
        }
        self.memory = memory
        self.random = random
    }

    /// Changes `count` random frames (a store in each) and returns them, ascending.
    mutating func dirty(_ count: Int) -> [UInt32] {
        var frames = Set<UInt32>()
        while frames.count < count { frames.insert(UInt32.random(in: 0..<UInt32(layout.frameCount), using: &random)) }
        for frame in frames {
            let at = Int(frame) * Self.frameSize + Int.random(in: 0..<Self.frameSize, using: &random)
            memory[at] = memory[at] &+ 1 | 1
        }
        return frames.sorted()
    }

    /// How a run's last epochs are committed.
    enum Ending: Sendable, Equatable, CustomTestStringConvertible {
        /// Every epoch put in place.
        case inPlace
        /// The last one left in the journal (a clean stop's).
        case lastInJournal
        /// The last one left in the journal, and the one before it cut short after putting
        /// this many batches of its frames in place (a clean stop begun while it committed).
        case cutShort(afterBatches: Int)

        var testDescription: String {
            switch self {
            case .inPlace: "every epoch in place"
            case .lastInJournal: "the last epoch in the journal"
            case .cutShort(let batches): "the epoch before the last cut short after \(batches) batches"
            }
        }
    }

    /// The full copy, a pass, then `epochs` epochs numbered from `first` (epoch numbers run on
    /// across syncs), the last ones committed as `ending` says; stops at the first error (the
    /// host died).
    mutating func run(
        _ journal: EpochJournal, epochs: Int, from first: Int = 1, ending: Ending = .inPlace,
        afterCommit: () -> Void = {}
    ) {
        do {
            try journal.beginSync()
            try memory.withUnsafeBytes { (m) in
                try journal.writeInPlace(frames: 0..<layout.frameCount, of: m.baseAddress!)
            }
            let pass = dirty(20)
            try memory.withUnsafeBytes { (m) in
                try pass.withUnsafeBufferPointer { (list) in
                    try journal.writeInPlace(frameList: list, of: m.baseAddress!)
                }
            }
            var dirtySinceLastCopy = Set(dirty(min(10, layout.journalFrames)))
            for epoch in first..<(first + epochs) {
                if epoch > first {
                    dirtySinceLastCopy = Set(dirty(Int.random(in: 1...layout.journalFrames, using: &random)))
                }
                let list = dirtySinceLastCopy.sorted()
                // The pause: the epoch's frames staged, as the machine stands now.
                var staged = [UInt8]()
                for frame in list {
                    staged += memory[Int(frame) * Self.frameSize..<(Int(frame) + 1) * Self.frameSize]
                }
                snapshots[epoch] = memory
                frameLists[epoch] = list
                let last = first + epochs - 1
                var inPlace = true
                var batchesBeforeCut = Int.max
                switch ending {
                case .inPlace: break
                case .lastInJournal: inPlace = epoch < last
                case .cutShort(let batches):
                    inPlace = epoch < last
                    if epoch == last - 1 { batchesBeforeCut = batches }
                }
                var batches = 0
                try staged.withUnsafeBytes { (s) in
                    try list.withUnsafeBufferPointer { (l) in
                        try journal.commit(
                            epoch: UInt64(epoch), frameList: l, staged: s.baseAddress!, inPlace: inPlace,
                            cutShort: {
                                batches += 1
                                return batches > batchesBeforeCut
                            })
                    }
                }
                afterCommit()
            }
            try journal.flush()
        } catch {
            return
        }
    }

    /// The frames that differ between two images (all of them when `expected` is missing).
    func differingFrames(_ image: [UInt8], _ expected: [UInt8]?) -> [Int] {
        guard let expected else { return Array(0..<layout.frameCount) }
        return (0..<layout.frameCount).filter { frame in
            let bytes = frame * Self.frameSize..<(frame + 1) * Self.frameSize
            return image[bytes] != expected[bytes]
        }
    }

    /// The image on `device`.
    func image(_ bytes: [UInt8]) -> [UInt8] {
        let start = Int(layout.imageOffset)
        return Array(bytes[start..<start + layout.frameCount * Self.frameSize])
    }
}

/// A small, seeded, reproducible generator.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Epochs on the export: committed whole, replayed exactly, whenever the primary dies")
struct EpochJournalTests {
    /// A journal on `device` that puts an epoch's frames in place four at a time when `ending`
    /// cuts one short (so that the cut can land between two batches of these small epochs).
    static func journal(
        _ device: CrashingDevice, _ layout: ExportLayout, _ ending: Primary.Ending = .cutShort(afterBatches: 0)
    ) throws(ExportError) -> EpochJournal {
        let journal = try EpochJournal(device: device, name: "test", layout: layout, owner: Primary.owner)
        if case .cutShort = ending { journal.inPlaceBatchFrames = 4 }
        return journal
    }

    @Test("without a failure the image equals the memory at the last epoch, and a takeover replays it")
    func clean() throws {
        var primary = Primary(seed: 1)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 6)
        #expect(journal.committedEpoch == 6)
        let generation = journal.header.generation
        #expect(
            primary.differingFrames(primary.image(device.bytes), primary.memory).isEmpty,
            "the last epoch's frames are in place after its flush")
        let outcome = try ExportRecovery.recover(device, name: "test")
        #expect(outcome.epoch == 6 && outcome.generation == generation && outcome.previousOwner == Primary.owner)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[6]).isEmpty)
    }

    @Test(
        "a clean stop's last epoch left in the journal, with the one before if the stop cut it short: the image is the epoch before them, and a takeover replays them",
        arguments: [
            Primary.Ending.lastInJournal, .cutShort(afterBatches: 0), .cutShort(afterBatches: 1),
            .cutShort(afterBatches: 3),
        ])
    func leftInTheJournal(ending: Primary.Ending) throws {
        var primary = Primary(seed: 8)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try Self.journal(device, primary.layout, ending)
        primary.run(journal, epochs: 6, ending: ending)
        #expect(journal.committedEpoch == 6)
        // (This seed's epochs 5 and 6 share frames: a replay of both must write them from 6.)
        try #require(!Set(primary.frameLists[5]!).isDisjoint(with: primary.frameLists[6]!), "no frame in both")
        // Epoch 5 stays in the journal too when the cut came before its last batch (of four frames).
        var pending: [UInt64] = [6]
        if case .cutShort(let batches) = ending {
            // (This seed's epoch 5 has more frames than every case puts in place before its cut.)
            try #require(primary.frameLists[5]!.count > batches * 4, "epoch 5 put in place whole: no cut")
            pending = [5, 6]
        }
        let probe = try ExportProbe.read(device, name: "test")
        #expect(probe.pending.map(\.record.epoch) == pending)
        let image = pending[0] - 1
        #expect(try journal.imageEpoch() == image)
        // The image is that epoch's, but in frames of the epochs left in the journal (some of a cut
        // epoch's are in place).
        let leftFrames = Set(pending.flatMap { primary.frameLists[Int($0)]! }.map(Int.init))
        let differing = primary.differingFrames(primary.image(device.bytes), primary.snapshots[Int(image)])
        #expect(Set(differing).isSubset(of: leftFrames), "\(differing) beyond \(leftFrames.sorted())")
        #expect(!primary.differingFrames(primary.image(device.bytes), primary.memory).isEmpty)
        // Replayed both ways: the pending epochs together in one batch (each read once), and a
        // few frames at a time (every epoch checked in a first read, written in a second).
        let copy = CrashingDevice(size: device.bytes.count)
        try copy.write(device.bytes, at: 0, durable: true)
        for (replayed, batch) in [(device, nil), (copy, 4)] as [(CrashingDevice, Int?)] {
            let outcome = try ExportRecovery.recover(replayed, name: "test", batchFrames: batch)
            #expect(outcome.epoch == 6)
            #expect(outcome.framesReplayed == probe.pending.reduce(0) { $0 + $1.record.count })
            #expect(primary.differingFrames(primary.image(replayed.bytes), primary.snapshots[6]).isEmpty)
        }
    }

    @Test("an epoch whose journal half holds one left there by a clean stop is refused, and nothing is lost")
    func halfOfAnEpochLeftInTheJournal() throws {
        var primary = Primary(seed: 3)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner)
        // Epoch 2 cut short at once, 3 left in the journal, then a commit of 4 (into 2's half).
        primary.run(journal, epochs: 3, ending: .cutShort(afterBatches: 0))
        #expect(journal.committedEpoch == 3)
        let list = primary.dirty(3)
        var staged = [UInt8]()
        for frame in list {
            staged += primary.memory[Int(frame) * Primary.frameSize..<(Int(frame) + 1) * Primary.frameSize]
        }
        var refused: ExportError?
        do {
            try staged.withUnsafeBytes { (s) in
                try list.withUnsafeBufferPointer { (l) in
                    try journal.commit(epoch: 4, frameList: l, staged: s.baseAddress!)
                }
            }
        } catch {
            refused = error as? ExportError
        }
        #expect(refused?.kind == .leftInJournal, "\(String(describing: refused))")
        #expect(journal.committedEpoch == 3)
        let outcome = try ExportRecovery.recover(device, name: "test")
        #expect(outcome.epoch == 3)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[3]).isEmpty)
    }

    @Test("after a takeover a sync's generation passes the taken-over export's, whatever this host's clock says")
    func generationAfterTakeover() throws {
        // The taken-over export's generation came from a clock an hour ahead of this host's.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let ahead = UInt64(now.tv_sec + 3_600) * 1_000_000_000
        var primary = Primary(seed: 5)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(
            device: device, name: "test", layout: primary.layout, owner: Primary.owner, after: ahead)
        primary.run(journal, epochs: 2)
        #expect(journal.committedEpoch == 2)
        #expect(journal.header.generation > ahead)
        #expect(try ExportProbe.read(device, name: "test").position?.generation == journal.header.generation)
        // Negative control: without it, the sync's generation is this clock's, behind the other's.
        var plain = Primary(seed: 6)
        let other = CrashingDevice(size: Int(plain.layout.requiredBytes))
        let unordered = try EpochJournal(device: other, name: "other", layout: plain.layout, owner: Primary.owner)
        plain.run(unordered, epochs: 2)
        #expect(unordered.header.generation < ahead)
    }

    @Test(
        "a host failure at any write of the sync and the epochs: the takeover finds exactly the last committed epoch",
        arguments: [Primary.Ending.inPlace, .lastInJournal, .cutShort(afterBatches: 1)])
    func crashAnywhere(ending: Primary.Ending) throws {
        // How many writes a whole run makes.
        var dry = Primary(seed: 7)
        let counter = CrashingDevice(size: Int(dry.layout.requiredBytes))
        dry.run(
            try Self.journal(counter, dry.layout, ending), epochs: 8, ending: ending)
        if case .cutShort = ending {
            #expect(try ExportProbe.read(counter, name: "test").pending.map(\.record.epoch) == [7, 8], "no cut")
        }
        let writes = counter.writes
        var outcomes: [UInt64: Int] = [:]
        for dieAt in 1...writes {
            for seed in 0..<3 as Range<UInt64> {
                var primary = Primary(seed: 7)
                let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: dieAt)
                let journal = try Self.journal(device, primary.layout, ending)
                primary.run(journal, epochs: 8, ending: ending)
                let acknowledged = journal.committedEpoch
                var random = SplitMix(seed: seed &* 31 &+ UInt64(dieAt))
                device.crash(&random)
                do {
                    let outcome = try ExportRecovery.recover(device, name: "test")
                    outcomes[outcome.epoch, default: 0] += 1
                    #expect(
                        outcome.epoch == acknowledged || outcome.epoch == acknowledged + 1,
                        "died at write \(dieAt): recovered \(outcome.epoch), acknowledged \(acknowledged)")
                    let differing = primary.differingFrames(
                        primary.image(device.bytes), primary.snapshots[Int(outcome.epoch)])
                    #expect(
                        differing.isEmpty,
                        "died at write \(dieAt), seed \(seed): frames \(differing) are not those of epoch \(outcome.epoch)"
                    )
                } catch {
                    // Before the first commit: no epoch (or, dead inside the header's first write, no header).
                    #expect(
                        (error.kind == .noCommittedEpoch || error.kind == .notMirrord) && acknowledged == 0,
                        "died at write \(dieAt): \(error)")
                }
            }
        }
        #expect(outcomes.keys.count >= 8, "failures landed in every epoch: \(outcomes)")
    }

    @Test(
        "a takeover that dies at any write of its own recovery, or before its flush: the next one finds the same epoch and replays it exactly"
    )
    func takeoverInterrupted() throws {
        let newOwner = ExportOwner(machineID: String(repeating: "b", count: 32), hostname: "backup", pid: 8, since: 9)
        // How many writes the run makes, and the recovery after it.
        var dry = Primary(seed: 9)
        let counter = CrashingDevice(size: Int(dry.layout.requiredBytes))
        dry.run(try EpochJournal(device: counter, name: "test", layout: dry.layout, owner: Primary.owner), epochs: 8)
        let run = counter.writes
        _ = try ExportRecovery.recover(counter, name: "test", newOwner: newOwner)
        let recovery = counter.writes - run
        #expect(recovery >= 2, "the replay and the owner: \(recovery) writes")
        for dieAt in (run + 1)...(run + recovery) {
            for seed in 0..<4 as Range<UInt64> {
                var primary = Primary(seed: 9)
                let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: dieAt)
                primary.run(
                    try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner),
                    epochs: 8)
                #expect(throws: ExportError.self, "died at write \(dieAt)") {
                    try ExportRecovery.recover(device, name: "test", newOwner: newOwner)
                }
                var random = SplitMix(seed: seed &* 17 &+ UInt64(dieAt))
                device.crash(&random)
                let outcome = try ExportRecovery.recover(device, name: "test", newOwner: newOwner)
                #expect(outcome.epoch == 8, "died at write \(dieAt), seed \(seed): recovered \(outcome.epoch)")
                let differing = primary.differingFrames(primary.image(device.bytes), primary.snapshots[8])
                #expect(
                    differing.isEmpty, "died at write \(dieAt), seed \(seed): frames \(differing) are not epoch 8's")
                #expect(try ExportProbe.read(device, name: "test").header?.owner == newOwner)
            }
        }
        // A recovery whose caller flushes later (the CPUs run first), the host lost before that.
        for seed in 0..<8 as Range<UInt64> {
            var primary = Primary(seed: 9)
            let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
            primary.run(
                try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner), epochs: 8)
            #expect(try ExportRecovery.recover(device, name: "test", newOwner: newOwner, durable: false).epoch == 8)
            var random = SplitMix(seed: seed)
            device.crash(&random)
            #expect(try ExportRecovery.recover(device, name: "test", newOwner: newOwner).epoch == 8)
            #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[8]).isEmpty, "seed \(seed)")
        }
    }

    @Test("negative control: the image alone, without the journal's replay, is a mix of two epochs after some failures")
    func imageAloneMixes() throws {
        var mixed = 0
        for dieAt in 8...60 {
            var primary = Primary(seed: 3)
            let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: dieAt)
            let journal = try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner)
            primary.run(journal, epochs: 8)
            var random = SplitMix(seed: UInt64(dieAt))
            device.crash(&random)
            if !primary.snapshots.values.contains(primary.image(device.bytes)) { mixed += 1 }
        }
        #expect(mixed > 0, "the equality check sees a mix when there is one")
    }
}
