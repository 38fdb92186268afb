import Foundation
import MirrorCore
@testable import MirrorEmulation
import Testing

/// A configuration for fast tests: 32 MiB modules, a busy workload and DMA.
func testConfiguration(pattern: MirrordConfiguration.Workload.Pattern = .hotset, seed: UInt64 = 1) -> MirrordConfiguration {
    var config = MirrordConfiguration()
    config.memory.size = 32 << 20
    config.duplex.thresholdFrames = 256
    config.duplex.maxPasses = 20
    config.workload.pattern = pattern
    config.workload.seed = seed
    config.workload.rate = .limited(bytesPerSecond: 48 << 20)
    config.dma.rate = .limited(bytesPerSecond: 64 << 20)
    config.dma.blockSize = 16 << 10
    return config
}

/// Frames that differ between the two modules, found by a byte comparison of our own (not the
/// engine's verify).
func differingFrames(_ machine: EmulatedMachine) -> [Int] {
    let size = machine.geometry.frameSize
    return (0..<machine.geometry.frameCount).filter { frame in
        memcmp(machine.active.base + frame * size, machine.spare.base + frame * size, size) != 0
    }
}

/// Runs one duplex on a started machine, lets the workload run on in lockstep for a while, stops
/// the threads and returns the summary.
func duplex(_ machine: EmulatedMachine, policy: DuplexPolicy, afterwards: UInt32 = 50_000) -> DuplexSummary {
    machine.start()
    usleep(20_000)  // the workload is running before tracking starts
    let summary = DuplexEngine(hardware: machine, policy: policy).run()
    usleep(afterwards)
    machine.shutdown()
    return summary
}

@Suite("Duplex end to end on the emulated machine", .serialized)
struct DuplexEndToEndTests {
    @Test("spare equals active byte for byte after duplexing under CPU stores and DMA",
          arguments: [MirrordConfiguration.Workload.Pattern.hotset, .uniform, .sequential], [UInt64(1), 2, 3])
    func spareEqualsActive(pattern: MirrordConfiguration.Workload.Pattern, seed: UInt64) throws {
        let config = testConfiguration(pattern: pattern, seed: seed)
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy)
        #expect(summary.result == "duplexed", "\(summary.message)")
        #expect(summary.verify?.framesChecked == machine.geometry.frameCount)
        #expect(summary.verify?.mismatches == 0)
        let dirtied: Int = summary.passes.reduce(0) { $0 + $1.dirtyFrames } + (summary.blackout?.finalFrames ?? 0)
        #expect(dirtied > 0, "the workload dirtied nothing during the duplex: the test proves nothing")
        #expect(differingFrames(machine) == [], "lockstep must keep the modules equal after the duplex")
    }

    @Test("without the MMU (stores mark the frame bitmap directly) the duplex is exact too", arguments: [UInt64(1), 2])
    func withoutMMU(seed: UInt64) throws {
        var config = testConfiguration(seed: seed)
        config.mmu.enabled = false
        config.workload.churn = 0
        let machine = try EmulatedMachine(configuration: config)
        #expect(machine.mmu == nil)
        let summary = duplex(machine, policy: config.duplexPolicy)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(differingFrames(machine) == [])
    }

    @Test("under page-table churn with huge pages, fork, exit and DMA, the spare equals the active",
          arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func churnHugePagesAndFork(seed: UInt64) throws {
        var config = testConfiguration(pattern: seed % 2 == 0 ? .uniform : .hotset, seed: seed)
        config.memory.size = 64 << 20
        config.workload.churn = 4000
        config.mmu.hugeShare = 0.5
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy, afterwards: 100_000)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(differingFrames(machine) == [])
        let events = try #require(machine.mmu).statistics.snapshot
        for kind in ["maps", "huge_maps", "unmaps", "remaps", "forks", "exits", "table_copies", "frame_copies"] {
            #expect(events[kind, default: 0] > 0, "no \(kind) happened: \(events)")
        }
    }

    @Test("negative control: without the departing-PTE hook, churn loses dirty frames and the verify fails",
          arguments: [UInt64(1), 2, 3, 4, 5])
    func departingHookOff(seed: UInt64) throws {
        // Room to spare, so that a lost frame is not soon reused (and rewritten, which the tracker
        // would see) before the verify.
        var config = testConfiguration(seed: seed)
        config.memory.size = 256 << 20
        config.workload.churn = 4000
        config.tracking.departingHook = false
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy)
        #expect(summary.result == "failed")
        #expect(summary.reason == "verify_mismatch")
        #expect(!differingFrames(machine).isEmpty)
    }

    @Test("a busy uniform workload that never converges still ends in a verified blackout")
    func nonConvergingWorkload() throws {
        var config = testConfiguration(pattern: .uniform)
        config.workload.rate = .limited(bytesPerSecond: 256 << 20)
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(summary.passEndReason != .threshold)
        #expect((summary.blackout?.finalFrames ?? 0) > config.duplex.thresholdFrames)
        #expect(differingFrames(machine) == [])
    }

    @Test("a lackey trace drives the CPUs and the duplex is exact")
    func traceWorkload() throws {
        let path = try LackeyTraceTests.writeTrace(pages: 3_000, stores: 40_000, seed: 7)
        defer { unlink(path) }
        var config = testConfiguration(pattern: .trace)
        config.workload.trace = path
        let machine = try EmulatedMachine(configuration: config)
        #expect(machine.replayedTrace?.distinctPages == 3_000)
        let summary = duplex(machine, policy: config.duplexPolicy)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(differingFrames(machine) == [])
    }

    @Test("negative control: without DMA dual-write the verify finds the frames DMA changed, and the duplex fails")
    func dmaWithoutDualWriteFails() throws {
        var config = testConfiguration()
        config.dma.dualWrite = false
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy, afterwards: 0)
        #expect(summary.result == "failed")
        #expect(summary.reason == "verify_mismatch")
        #expect((summary.verify?.mismatches ?? 0) > 0)
        #expect(summary.message.contains("differ between active and spare"))
        #expect(!machine.isLockstep)
        // Our own comparison agrees (memory kept changing since, so some frames may have been
        // rewritten in the meantime; the frames reported must still mostly differ).
        let differing = Set(differingFrames(machine))
        let reported: [Int] = summary.verify?.firstMismatches ?? []
        #expect(!differing.isEmpty)
        #expect(!reported.isEmpty)
        #expect(reported.filter(differing.contains).count * 2 >= reported.count, "reported \(reported)")
    }

    @Test("negative control: a bit flipped in the spare after the final copy is caught")
    func flippedBitIsCaught() throws {
        var config = testConfiguration()
        config.fault.flipSpareBit = true
        let machine = try EmulatedMachine(configuration: config)
        let summary = duplex(machine, policy: config.duplexPolicy)
        let flipped = try #require(machine.flippedSpareFrame)
        #expect(summary.result == "failed")
        #expect(summary.verify?.mismatches == 1)
        #expect(summary.verify?.firstMismatches == [flipped])
        #expect(summary.message.contains("first: \(flipped)"))
    }

    @Test("the blackout stops every CPU and the DMA engine; leaving it resumes them")
    func blackoutStopsWriters() throws {
        let config = testConfiguration()
        let machine = try EmulatedMachine(configuration: config)
        machine.start()
        defer { machine.shutdown() }
        usleep(20_000)
        func checksum() -> UInt64 {
            let words = machine.active.base.assumingMemoryBound(to: UInt64.self)
            var sum: UInt64 = 0
            for i in 0..<(machine.geometry.byteCount / 8) { sum = sum &* 31 &+ words[i] }
            return sum
        }
        _ = try machine.enterBlackout()
        let stopped = checksum()
        usleep(30_000)
        #expect(checksum() == stopped, "memory changed while every writer was stopped")
        #expect(throws: HardwareError.self) { try machine.enterBlackout() }
        machine.leaveBlackout()
        usleep(30_000)
        #expect(checksum() != stopped, "writers did not resume")
    }

    @Test("file backing: after a duplex the two image files are byte-identical")
    func fileBacking() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-test-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = testConfiguration()
        config.memory.backing = .file
        config.memory.stateDirectory = dir
        do {
            let machine = try EmulatedMachine(configuration: config)
            let summary = duplex(machine, policy: config.duplexPolicy)
            #expect(summary.isDuplexed, "\(summary.message)")
        }
        let active = try Data(contentsOf: URL(fileURLWithPath: dir + "/active.img"))
        let spare = try Data(contentsOf: URL(fileURLWithPath: dir + "/spare.img"))
        #expect(active.count == config.memory.size)
        #expect(active == spare)
    }
}
