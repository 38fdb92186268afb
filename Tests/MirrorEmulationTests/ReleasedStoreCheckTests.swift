import Foundation
import MirrorCore
import Testing

@testable import MirrorEmulation

/// A copy of a machine's active memory, taken in a blackout with the writers' sequence read in the
/// same blackout.
struct EpochImage {
    var sequence: WriterSequence
    var words: [UInt64]

    /// The check of `checker` on the copy (prefix mode, or exact when `exactly` is given).
    func check(
        _ checker: ReleasedStoreCheck, released: WriterSequence? = nil, exactly: WriterSequence? = nil
    ) throws -> ReleasedStoreCheck.Report {
        try words.withUnsafeBytes { bytes throws(ReleasedStoreCheck.Refusal) in
            if let exactly { return try checker.check(image: bytes.baseAddress!, exactly: exactly) }
            return try checker.check(image: bytes.baseAddress!, released: released)
        }
    }
}

/// Options for the released-store tests: 8 MiB, two rate-limited CPUs (unlimited for the
/// sequential pattern, so that a CPU that never paces itself is counted too), DMA, no emulated
/// MMU; the trace pattern replays a trace of 64 pages written here.
func releasedOptions(pattern: EmulatedMachine.Options.Pattern) throws -> EmulatedMachine.Options {
    var options = EmulatedMachine.Options()
    options.memorySize = 8 << 20
    options.workload.pattern = pattern
    options.workload.cpus = 2
    options.workload.seed = 7
    options.workload.churn = 0
    options.workload.rate = .limited(bytesPerSecond: 48 << 20)
    options.mmu.enabled = false
    options.dma.rate = .limited(bytesPerSecond: 64 << 20)
    options.dma.blockSize = 16 << 10
    if pattern == .sequential { options.workload.rate = .unlimited }
    if pattern == .trace {
        options.workload.tracePath = try LackeyTraceTests.writeTrace(pages: 64, stores: 5_000, seed: 7)
    }
    return options
}

/// Runs a machine of `options` (CPU 1 throttled by half, so that a throttled CPU is counted too)
/// and takes `epochs` copies, each in a blackout once every writer has made progress since the
/// last one; the machine runs on between them.
func takeEpochs(_ options: EmulatedMachine.Options, epochs: Int) throws -> [EpochImage] {
    let machine = try EmulatedMachine(options: options)
    defer { machine.shutdown() }
    machine.setThrottle(cpu: 1, fraction: 0.5)
    try machine.start()
    var images: [EpochImage] = []
    var previous = machine.writerSequence()
    for _ in 0..<epochs {
        waitUntil("every writer made progress") {
            let now = machine.writerSequence()
            return (0..<now.writerCount).allSatisfy { now.count(writer: $0) >= previous.count(writer: $0) + 50 }
        }
        _ = try machine.enterBlackout()
        let sequence = machine.writerSequence()
        var words = [UInt64](repeating: 0, count: options.memorySize / 8)
        words.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, machine.active.base, options.memorySize) }
        machine.leaveBlackout()
        images.append(EpochImage(sequence: sequence, words: words))
        previous = sequence
    }
    return images
}

extension MachineSuites {
    /// The check a takeover is judged by (issue 25): the image alone, replayed against the
    /// workload's streams, shows how far each writer had run and whether released stores are lost.
    @Suite("Released stores: the image is checked against the writers' replayed streams")
    struct ReleasedStoreCheckTests {
        static let patterns: [EmulatedMachine.Options.Pattern] = [.uniform, .hotset]

        @Test(
            "a copy taken in a blackout is exactly the memory after the sequence read there",
            arguments: EmulatedMachine.Options.Pattern.allCases)
        func exactCopies(pattern: EmulatedMachine.Options.Pattern) throws {
            let options = try releasedOptions(pattern: pattern)
            defer { if pattern == .trace { unlink(options.workload.tracePath) } }
            let checker = try ReleasedStoreCheck(options: options)
            let images = try takeEpochs(options, epochs: 3)
            for (e, image) in images.enumerated() {
                #expect(image.sequence.dmaTransfers ?? 0 > 0)
                let exact = try image.check(checker, exactly: image.sequence)
                #expect(exact.passed, "epoch \(e) exact: \(exact)")
                let prefix = try image.check(checker, released: image.sequence)
                #expect(prefix.passed, "epoch \(e) prefix: \(prefix)")
                #expect(prefix.found == image.sequence, "epoch \(e): found \(prefix.found)")
                #expect(prefix.lostStores == 0)
                if e > 0 { #expect(image.sequence.covers(images[e - 1].sequence)) }
            }
        }

        @Test("negative controls: a lost released store, a flipped unit, an older epoch", arguments: patterns)
        func negativeControls(pattern: EmulatedMachine.Options.Pattern) throws {
            let options = try releasedOptions(pattern: pattern)
            let checker = try ReleasedStoreCheck(options: options)
            let images = try takeEpochs(options, epochs: 2)
            let image = images[0]

            // One store more released than the copy holds: one released store lost.
            var beyond = image.sequence
            beyond.cpuStores[0] += 1
            let lost = try image.check(checker, released: beyond)
            #expect(!lost.passed)
            #expect(lost.lostStores == 1, "\(lost)")
            #expect(lost.mismatch == nil, "the copy itself is a consistent prefix: \(lost)")
            let exactLost = try image.check(checker, exactly: beyond)
            #expect(!exactLost.passed)
            #expect(exactLost.lostStores == 1, "\(exactLost)")

            // One unit flipped: the check names its frame.
            let frameSize = options.frameSize
            let frame = 100
            var flipped = image
            flipped.words[frame * frameSize / 8 + 1] ^= 1 << 17
            let damaged = try flipped.check(checker, released: image.sequence)
            #expect(!damaged.passed)
            #expect(damaged.mismatch?.frame == frame, "\(damaged)")
            #expect(damaged.mismatch?.unit == 0 && damaged.mismatch?.word == 1, "\(damaged)")
            #expect(damaged.mismatchedUnits == 1)
            let exactDamaged = try flipped.check(checker, exactly: image.sequence)
            #expect(exactDamaged.mismatch?.frame == frame, "\(exactDamaged)")

            // The copy of epoch e against the sequence released by epoch e + 1.
            let next = images[1].sequence
            let stale = try image.check(checker, released: next)
            #expect(!stale.passed)
            #expect(stale.mismatch == nil, "\(stale)")
            let expected = (0..<next.writerCount).reduce(UInt64(0)) {
                $0 + next.count(writer: $1) - image.sequence.count(writer: $1)
            }
            #expect(expected > 0)
            #expect(stale.lostStores == expected, "\(stale)")
        }
    }
}

@Suite("Released stores: what the check refuses")
struct ReleasedStoreRefusalTests {
    @Test("the emulated MMU is refused, and a sequence of other writers")
    func refusals() throws {
        var options = try releasedOptions(pattern: .uniform)
        options.mmu.enabled = true
        #expect(throws: ReleasedStoreCheck.Refusal.self) { try ReleasedStoreCheck(options: options) }
        options.mmu.enabled = false
        let checker = try ReleasedStoreCheck(options: options)
        let words = [UInt64](repeating: 0, count: options.memorySize / 8)
        #expect(throws: ReleasedStoreCheck.Refusal.self) {
            try words.withUnsafeBytes { bytes throws(ReleasedStoreCheck.Refusal) in
                try checker.check(
                    image: bytes.baseAddress!, released: WriterSequence(cpuStores: [1], dmaTransfers: nil))
            }
        }
    }

    @Test("a freshly filled memory is the prefix of length 0 of every stream; any store counts")
    func freshMemory() throws {
        let options = try releasedOptions(pattern: .sequential)
        let checker = try ReleasedStoreCheck(options: options)
        let module = try MemoryModule(byteCount: options.memorySize, backing: .anonymous, name: "test")
        module.fill(seed: options.workload.seed)
        let zero = WriterSequence(cpuStores: [0, 0], dmaTransfers: 0)
        let report = try checker.check(image: module.base, released: zero)
        #expect(report.passed, "\(report)")
        #expect(report.found == zero)
        let one = try checker.check(image: module.base, released: WriterSequence(cpuStores: [0, 1], dmaTransfers: 0))
        #expect(one.lostStores == 1)
    }
}
