import MirrorCore
@testable import MirrorEmulation
import Synchronization
import Testing

/// Whole duplexes on a machine without CPU threads, every store and page-table event placed by a
/// ``MachineDriver`` at a chosen point of the duplex: each case happens exactly, every run.
@Suite("Deterministic duplexes: scripted stores and page-table events between passes")
struct DeterministicDuplexTests {
    /// A duplex of `machine` with the hooks of ``InterleavedHardware``.
    func run(
        _ machine: EmulatedMachine, policy: DuplexPolicy,
        beforePass: @escaping @Sendable (Int) -> Void = { _ in }, duringPass: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> DuplexSummary {
        let hardware = InterleavedHardware(machine, beforePass: beforePass, duringPass: duringPass)
        return DuplexEngine(hardware: hardware, policy: policy).run()
    }

    @Test("stores during the passes are each copied once, and the passes end at the threshold")
    func storesBetweenPasses() throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let driver = MachineDriver(machine: machine)
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 2, minProgress: 0),
            beforePass: { pass in
                if pass == 1 { for frame in 100..<110 { driver.store(frame: frame) } }
            },
            duringPass: { pass in
                switch pass {
                case 1: for frame in [7, 300, 3000] { driver.store(frame: frame) }
                case 2: driver.store(frame: 4000)
                default: break
                }
            })
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.map(\.dirtyFrames) == [10, 3])
        #expect(summary.passes.map(\.remainingDirtyFrames) == [3, 1])
        #expect(summary.blackout?.finalFrames == 1)
        #expect(differingFrames(machine) == [])
        // In lockstep a store reaches both modules.
        let value = driver.store(frame: 5)
        #expect(driver.words(frame: 5) == (value, value))
    }

    @Test("negative control: a store the tracking never sees is caught by the verify")
    func untrackedStoreIsCaught() throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let summary = run(machine, policy: DuplexPolicy(thresholdFrames: 2), beforePass: { _ in
            // Behind the tracking's back: no dirty bit.
            machine.active.base.storeBytes(of: UInt64(42), toByteOffset: 77 * 4096, as: UInt64.self)
        })
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(summary.verify?.firstMismatches == [77])
    }

    /// A process whose page 600 was written, harvested and copied by pass 1, then written again
    /// and unmapped before pass 2 (which a store racing pass 1 makes happen): only the departing
    /// entry's dirty bit says the frame changed.
    func departingDirtyPage(hook: Bool) throws -> (summary: DuplexSummary, frame: Int, machine: EmulatedMachine) {
        var options = quietOptions()
        options.mmu.departingHook = hook
        let machine = try EmulatedMachine(options: options)
        let driver = MachineDriver(machine: machine)
        let process = try driver.createProcess()
        let frame = try driver.store(process, page: 600)
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 0, maxPasses: 3, minProgress: 0),
            beforePass: { pass in
                switch pass {
                case 1: _ = try? driver.store(process, page: 600)
                case 2:
                    _ = try? driver.store(process, page: 600)
                    try? driver.unmap(process, region: 1)
                default: break
                }
            },
            duringPass: { pass in
                if pass == 1 { _ = try? driver.store(process, page: 3000) }
            })
        return (summary, frame, machine)
    }

    @Test("a dirty page whose mapping goes away between passes is still copied (the departing-entry hook)")
    func departingEntryIsTracked() throws {
        let (summary, _, machine) = try departingDirtyPage(hook: true)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(differingFrames(machine) == [])
    }

    @Test("negative control: without the departing-entry hook the frame is lost, and the verify names it")
    func departingEntryLostWithoutHook() throws {
        let (summary, frame, machine) = try departingDirtyPage(hook: false)
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(summary.verify?.firstMismatches == [frame])
        #expect(differingFrames(machine) == [frame])
    }

    @Test("a store to a huge page dirties its 512 frames, and each is copied")
    func hugePage() throws {
        let machine = try EmulatedMachine(options: quietOptions())
        let driver = MachineDriver(machine: machine)
        let process = try driver.createProcess()
        let first = try driver.store(process, page: 512, huge: true)
        #expect(first % 512 == 0)
        let summary = run(machine, policy: DuplexPolicy(thresholdFrames: 0, minProgress: 0), beforePass: { pass in
            if pass == 1 { _ = try? driver.store(process, page: 512 + 7) }
        })
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(summary.passes.first?.dirtyFrames == 512, "the harvest splits the huge page and reports all its frames")
        #expect(differingFrames(machine) == [])
    }

    @Test("fork, copy-on-write, remap and exit between passes lose nothing")
    func forkCopyOnWriteRemapExit() throws {
        let machine = try EmulatedMachine(options: quietOptions())
        let driver = MachineDriver(machine: machine)
        let parent = try driver.createProcess()
        for page in [10, 11, 700, 1500] { try driver.store(parent, page: page) }
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 0, maxPasses: 5, minProgress: 0),
            beforePass: { pass in
                guard pass == 1 else { return }
                _ = try? driver.store(parent, page: 10)
                try? driver.remap(parent, page: 700)
                guard let child = try? driver.fork(parent) else { return }
                _ = try? driver.store(child, page: 10)   // breaks the shared table, copies the frame
                _ = try? driver.store(parent, page: 11)
                _ = try? driver.store(child, page: 1500)
                try? driver.exit(child)
            },
            duringPass: { pass in
                if pass == 1 { _ = try? driver.store(parent, page: 1500) }
            })
        #expect(summary.isDuplexed, "\(summary.message)")
        let events = try #require(machine.parts.mmu).statistics.snapshot
        for kind in ["forks", "exits", "remaps", "table_copies", "frame_copies"] {
            #expect(events[kind, default: 0] > 0, "no \(kind) happened: \(events)")
        }
        #expect(differingFrames(machine) == [])
    }
}
