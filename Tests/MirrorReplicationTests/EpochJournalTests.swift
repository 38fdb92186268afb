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

    /// The full copy, a pass, then `epochs` epochs numbered from `first` (epoch numbers run on
    /// across syncs), the last one put in place unless not `lastInPlace` (a clean stop's);
    /// stops at the first error (the host died).
    mutating func run(
        _ journal: EpochJournal, epochs: Int, from first: Int = 1, lastInPlace: Bool = true,
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
                try staged.withUnsafeBytes { (s) in
                    try list.withUnsafeBufferPointer { (l) in
                        try journal.commit(
                            epoch: UInt64(epoch), frameList: l, staged: s.baseAddress!,
                            inPlace: lastInPlace || epoch < first + epochs - 1)
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

    @Test("a clean stop's last epoch left in the journal: the image is the epoch before, and a takeover replays it")
    func lastEpochLeftInTheJournal() throws {
        var primary = Primary(seed: 1)
        let device = CrashingDevice(size: Int(primary.layout.requiredBytes))
        let journal = try EpochJournal(device: device, name: "test", layout: primary.layout, owner: Primary.owner)
        primary.run(journal, epochs: 6, lastInPlace: false)
        #expect(journal.committedEpoch == 6)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[5]).isEmpty)
        #expect(!primary.differingFrames(primary.image(device.bytes), primary.memory).isEmpty)
        let outcome = try ExportRecovery.recover(device, name: "test")
        #expect(outcome.epoch == 6 && outcome.framesReplayed > 0)
        #expect(primary.differingFrames(primary.image(device.bytes), primary.snapshots[6]).isEmpty)
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
        arguments: [true, false])
    func crashAnywhere(lastInPlace: Bool) throws {
        // How many writes a whole run makes.
        var dry = Primary(seed: 7)
        let counter = CrashingDevice(size: Int(dry.layout.requiredBytes))
        dry.run(
            try EpochJournal(device: counter, name: "test", layout: dry.layout, owner: Primary.owner), epochs: 8,
            lastInPlace: lastInPlace)
        let writes = counter.writes
        var outcomes: [UInt64: Int] = [:]
        for dieAt in 1...writes {
            for seed in 0..<3 as Range<UInt64> {
                var primary = Primary(seed: 7)
                let device = CrashingDevice(size: Int(primary.layout.requiredBytes), dieAtWrite: dieAt)
                let journal = try EpochJournal(
                    device: device, name: "test", layout: primary.layout, owner: Primary.owner)
                primary.run(journal, epochs: 8, lastInPlace: lastInPlace)
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
