import MirrorCore

/// Decides, from a memory image alone, whether a takeover kept every *released* store: the
/// check of the spare on another host after a failure (issue 25), independent of mirrord's own
/// bookkeeping (its counters, journal and export status).
///
/// Without the emulated MMU the memory of an emulated machine is a function of its options and
/// of how far each writer has run (``WriterSequence``): the initial fill, then each CPU's stores
/// (store `n` writes the CPU's base value plus `n` into every word of one unit of its lane) and
/// the DMA engine's transfers (transfer `n` writes its base value plus `n` into its lane's units
/// of every frame of one block). The check replays each writer's stream and asks:
///
/// - **Prefix**: for each writer, is the image what that writer leaves after some number `N` of
///   its stores? `N` is the largest store number found in the writer's lane whose store lands
///   where it was found (store `n`'s place is computed directly, so a damaged value is not taken
///   for a store); the stream is then replayed to `N` and every unit of the writer's lane
///   compared, each unit no store reached against the initial fill. Every unit of a frame is in
///   some writer's lane (`LaneLayout`), so every byte of the image is compared.
/// - **Released**: is `N` at least the writer's count in the last released sequence? The stores
///   short of it are *lost*.
///
/// ``check(image:exactly:)`` asks instead whether the image is exactly the memory after a given
/// sequence (a copy taken in a blackout).
///
/// The pattern `trace` is replayed too (the trace is read again from its path); a machine with the
/// emulated MMU (`mmu.enabled`) is refused: its page tables decide where a store lands, and its
/// kernel writes frames of its own. A DMA transfer counts as one store in the totals.
///
/// A test tool: a check allocates 8 bytes a unit of memory (an eighth of memory with 64-byte
/// stores) and replays tens of millions of stores a second, with no allocation a store.
public struct ReleasedStoreCheck: Sendable {
    /// Why the options or a sequence cannot be checked.
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        /// What cannot be checked and why.
        public var description: String
    }

    /// The first unit of the image that differs from the replay.
    public struct Mismatch: Sendable, Hashable, CustomStringConvertible {
        /// The frame.
        public var frame: Int
        /// The unit within the frame.
        public var unit: Int
        /// The 8-byte word within the unit.
        public var word: Int
        /// The writer whose lane the unit is in (CPUs, then the DMA engine).
        public var writer: Int
        /// `cpu0`, …, `dma`.
        public var writerName: String
        /// The word the replay expects.
        public var expected: UInt64
        /// The word in the image.
        public var found: UInt64

        /// `frame 12 unit 5 word 0 (cpu1's lane): expected 0x…, found 0x…`.
        public var description: String {
            "frame \(frame) unit \(unit) word \(word) (\(writerName)'s lane): expected 0x\(hex(expected)), "
                + "found 0x\(hex(found))"
        }
    }

    /// What a check found.
    public struct Report: Sendable, CustomStringConvertible {
        /// How far each writer had run, as found in the image (prefix mode: the largest store of
        /// each writer found where it lands).
        public var found: WriterSequence
        /// The sequence checked against: the last released one (prefix mode), or the exact one.
        public var released: WriterSequence?
        /// Released stores (and DMA transfers) missing from the image: the sum over writers of
        /// what was released beyond what was found.
        public var lostStores: UInt64
        /// The first unit that differs from the replay, if any.
        public var mismatch: Mismatch?
        /// How many units differ from the replay.
        public var mismatchedUnits: Int

        /// Whether the image is a consistent prefix of every writer's stream (or exactly the
        /// sequence, in exact mode) and lost no released store.
        public var passed: Bool { mismatch == nil && lostStores == 0 }

        /// One line: what was found against what was released, the lost stores, the first
        /// difference.
        public var description: String {
            var parts: [String] = []
            let names = (0..<found.writerCount).map { WriterSequence.writerName($0, cpus: found.cpuCount) }
            if let released {
                parts.append(
                    "found "
                        + (0..<found.writerCount).map { w in
                            let (have, want) = (found.count(writer: w), released.count(writer: w))
                            return "\(names[w]) \(have) \(have >= want ? "≥" : "<") \(want)"
                        }.joined(separator: ", "))
            } else {
                parts.append("found \(found)")
            }
            parts.append("\(lostStores) released store\(lostStores == 1 ? "" : "s") lost")
            if let mismatch {
                parts.append(
                    "\(mismatchedUnits) unit\(mismatchedUnits == 1 ? " differs" : "s differ"), first \(mismatch)")
            }
            return parts.joined(separator: "; ")
        }
    }

    /// The options of the machine whose memory is checked.
    public let options: EmulatedMachine.Options
    private let frames: Int
    private let layout: LaneLayout
    private let cpus: Int
    private let hasDMA: Bool
    private let streams: [WorkloadStream]
    private let blockFrames: Int
    /// DMA blocks; the frames past `blocks * blockFrames` no transfer reaches.
    private let blocks: Int

    /// The largest store number taken from an image: a value further from a writer's base is
    /// not one of its stores (2⁴⁸ stores is weeks at any rate the emulation reaches).
    private static let largestStore: UInt64 = 1 << 48

    /// A check of memory of a machine built with `options`; refused for the emulated MMU, or
    /// options that cannot build a machine.
    public init(options: EmulatedMachine.Options) throws(Refusal) {
        guard !options.mmu.enabled else {
            throw Refusal(
                description: "the emulated MMU (mmu.enabled = true) decides where stores land and writes frames of "
                    + "its own; the released-store check replays only machines without it")
        }
        let frames = options.memorySize / options.frameSize
        guard frames > 0, options.memorySize % options.frameSize == 0 else {
            throw Refusal(description: "memory size \(options.memorySize) is not a whole number of frames")
        }
        if let problem = options.writerLayoutProblem { throw Refusal(description: problem) }
        self.options = options
        self.frames = frames
        let workload = options.workload
        cpus = workload.cpus
        hasDMA = options.dma.rate.bytesPerSecond != 0
        let layout = LaneLayout(
            frameSize: options.frameSize, storeSize: workload.storeSize, writers: options.writerCount)
        self.layout = layout
        blockFrames = max(1, options.dma.blockSize / options.frameSize)
        blocks = max(1, frames / blockFrames)
        if hasDMA && blockFrames > frames {
            throw Refusal(description: "a DMA block of \(blockFrames) frames is larger than memory")
        }
        var trace: LackeyTrace?
        if workload.replaysTrace {
            do {
                trace = try LackeyTrace(path: workload.tracePath, frameCount: frames, unitSize: workload.storeSize)
            } catch {
                throw Refusal(description: "cannot read the trace the machine replayed: \(error)")
            }
        }
        streams = (0..<workload.cpus).map { cpu in
            WorkloadStream.make(
                cpu: cpu, cpus: workload.cpus, frames: frames, workload: workload, layout: layout, trace: trace)
        }
    }

    /// The writers of the machine: a sequence of this shape is the only one a check accepts.
    public var writerCount: Int { cpus + (hasDMA ? 1 : 0) }

    /// Prefix mode: whether `image` (``EmulatedMachine/Options/memorySize`` bytes, 8-byte aligned)
    /// is what every writer leaves after some prefix of its stream, and, given the last
    /// `released` sequence, that no writer's prefix falls short of it.
    public func check(image: UnsafeRawPointer, released: WriterSequence? = nil) throws(Refusal) -> Report {
        if let released { try accept(released) }
        let found = foundSequence(image: image)
        var report = compare(image: image, with: found)
        report.released = released
        if let released { report.lostStores = Self.lost(released, found) }
        return report
    }

    /// Exact mode: whether `image` is exactly the memory after `sequence` (every writer's count),
    /// as a copy taken inside a blackout with the sequence read in the same blackout is. The
    /// report's ``Report/found`` is what prefix mode finds, and its lost stores those of
    /// `sequence` beyond it.
    public func check(image: UnsafeRawPointer, exactly sequence: WriterSequence) throws(Refusal) -> Report {
        try accept(sequence)
        var report = compare(image: image, with: sequence)
        report.found = foundSequence(image: image)
        report.released = sequence
        report.lostStores = Self.lost(sequence, report.found)
        return report
    }

    /// How far each writer had run, as the image shows: the largest store number in its lane
    /// whose store lands where it was found (0 when none is).
    public func foundSequence(image: UnsafeRawPointer) -> WriterSequence {
        precondition(Int(bitPattern: image) % 8 == 0, "the image must be 8-byte aligned")
        let words = image.assumingMemoryBound(to: UInt64.self)
        let seed = options.workload.seed
        let wordsPerFrame = options.frameSize / 8
        let wordsPerUnit = layout.storeSize / 8
        var stores: [UInt64] = []
        for cpu in 0..<cpus {
            let base = EmulatedCPU.valueBase(seed: EmulatedCPU.seed(workload: seed, cpu: cpu))
            let stream = streams[cpu]
            var best: UInt64 = 0
            for frame in 0..<frames {
                for index in 0..<layout.unitCount(lane: cpu) {
                    let unit = layout.unit(lane: cpu, index: index)
                    let at = frame &* wordsPerFrame &+ unit &* wordsPerUnit
                    let value = words[at]
                    let n = value &- base
                    guard n > best, n <= Self.largestStore, value != MemoryModule.fillWord(at, seed: seed) else {
                        continue
                    }
                    let store = stream.store(number: n)
                    if store.frame == frame && store.offset &>> layout.storeShift == unit { best = n }
                }
            }
            stores.append(best)
        }
        var transfers: UInt64?
        if hasDMA {
            let lane = cpus
            let base = DMAEngine.valueBase(seed: seed)
            let first = layout.unit(lane: lane, index: 0)
            var best: UInt64 = 0
            for frame in 0..<(blocks * blockFrames) {
                let at = frame &* wordsPerFrame &+ first &* wordsPerUnit
                let value = words[at]
                let n = value &- base
                guard n > best, n <= Self.largestStore, value != MemoryModule.fillWord(at, seed: seed) else {
                    continue
                }
                var random = DMAEngine.blockRandom(seed: seed)
                random.advance(by: n - 1)
                if DMAEngine.block(random.next(), blocks: blocks) == frame / blockFrames { best = n }
            }
            transfers = best
        }
        return WriterSequence(cpuStores: stores, dmaTransfers: transfers)
    }

    /// Replays `sequence` and compares every unit of `image` with it.
    private func compare(image: UnsafeRawPointer, with sequence: WriterSequence) -> Report {
        precondition(Int(bitPattern: image) % 8 == 0, "the image must be 8-byte aligned")
        let words = image.assumingMemoryBound(to: UInt64.self)
        let seed = options.workload.seed
        let unitsPerFrame = layout.unitsPerFrame
        // The number of the last store in each unit (CPU lanes), and of the last transfer in
        // each DMA block; 0: none since the fill.
        let last = UnsafeMutablePointer<UInt64>.allocate(capacity: frames * unitsPerFrame)
        last.initialize(repeating: 0, count: frames * unitsPerFrame)
        defer { last.deallocate() }
        let lastTransfer = UnsafeMutablePointer<UInt64>.allocate(capacity: blocks)
        lastTransfer.initialize(repeating: 0, count: blocks)
        defer { lastTransfer.deallocate() }
        for cpu in 0..<cpus {
            streams[cpu].replay(
                sequence.cpuStores[cpu], unitsPerFrame: unitsPerFrame, storeShift: layout.storeShift, into: last)
        }
        if let transfers = sequence.dmaTransfers {
            var random = DMAEngine.blockRandom(seed: seed)
            var n: UInt64 = 0
            while n < transfers {
                n &+= 1
                lastTransfer[DMAEngine.block(random.next(), blocks: blocks)] = n
            }
        }
        let bases = (0..<cpus).map { EmulatedCPU.valueBase(seed: EmulatedCPU.seed(workload: seed, cpu: $0)) }
        let dmaBase = DMAEngine.valueBase(seed: seed)
        let dmaFrames = hasDMA ? blocks * blockFrames : 0
        let writers = layout.writers
        let wordsPerUnit = layout.storeSize / 8
        var mismatch: Mismatch?
        var mismatchedUnits = 0
        bases.withUnsafeBufferPointer { bases in
            var at = 0  // the word of the image
            for frame in 0..<frames {
                for unit in 0..<unitsPerFrame {
                    let writer = unit % writers
                    let n: UInt64
                    let base: UInt64
                    if writer < cpus {
                        n = last[frame &* unitsPerFrame &+ unit]
                        base = bases[writer]
                    } else {
                        n = frame < dmaFrames ? lastTransfer[frame / blockFrames] : 0
                        base = dmaBase
                    }
                    var differs = -1
                    if n != 0 {
                        let value = base &+ n
                        for w in 0..<wordsPerUnit where words[at &+ w] != value {
                            differs = w
                            break
                        }
                    } else {
                        for w in 0..<wordsPerUnit where words[at &+ w] != MemoryModule.fillWord(at &+ w, seed: seed) {
                            differs = w
                            break
                        }
                    }
                    if differs >= 0 {
                        mismatchedUnits += 1
                        if mismatch == nil {
                            let expected =
                                n != 0 ? base &+ n : MemoryModule.fillWord(at &+ differs, seed: seed)
                            mismatch = Mismatch(
                                frame: frame, unit: unit, word: differs, writer: writer,
                                writerName: WriterSequence.writerName(writer, cpus: cpus), expected: expected,
                                found: words[at &+ differs])
                        }
                    }
                    at &+= wordsPerUnit
                }
            }
        }
        return Report(
            found: sequence, released: nil, lostStores: 0, mismatch: mismatch, mismatchedUnits: mismatchedUnits)
    }

    /// Refuses a sequence of other writers than the machine's.
    private func accept(_ sequence: WriterSequence) throws(Refusal) {
        guard sequence.cpuCount == cpus, (sequence.dmaTransfers != nil) == hasDMA else {
            throw Refusal(
                description:
                    "the sequence has \(sequence.cpuCount) CPUs and \(sequence.dmaTransfers == nil ? "no" : "a") "
                    + "DMA engine; the machine has \(cpus) and \(hasDMA ? "a" : "no") DMA engine")
        }
    }

    /// What `released` has beyond `found`, summed over writers.
    private static func lost(_ released: WriterSequence, _ found: WriterSequence) -> UInt64 {
        (0..<released.writerCount).reduce(0) { total, w in
            let (want, have) = (released.count(writer: w), found.count(writer: w))
            return total + (want > have ? want - have : 0)
        }
    }
}

/// 16 hexadecimal digits.
private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
