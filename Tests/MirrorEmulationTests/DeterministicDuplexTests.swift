import MirrorCore
import Synchronization
import Testing

@testable import MirrorEmulation

/// Whole duplexes on a machine without CPU threads, every store and page-table event placed by a
/// ``MachineDriver`` at a chosen point of the duplex: each case happens exactly, every run.
@Suite("Deterministic duplexes: scripted stores and page-table events between passes")
struct DeterministicDuplexTests {
    /// A duplex of `machine` with the hooks of ``InterleavedHardware``.
    func run(
        _ machine: EmulatedMachine, policy: DuplexPolicy,
        beforePass: @escaping @Sendable (Int) -> Void = { _ in },
        duringPass: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> DuplexSummary {
        runRecordingBlackoutCopies(machine, policy: policy, beforePass: beforePass, duringPass: duringPass).summary
    }

    /// The same, with the length of every frame list the blackouts copied.
    func runRecordingBlackoutCopies(
        _ machine: EmulatedMachine, policy: DuplexPolicy,
        beforePass: @escaping @Sendable (Int) -> Void = { _ in },
        duringPass: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> (summary: DuplexSummary, blackoutCopies: [Int]) {
        let hardware = InterleavedHardware(machine, beforePass: beforePass, duringPass: duringPass)
        let summary = DuplexEngine(hardware: hardware, policy: policy).run()
        return (summary, hardware.copiesInBlackout)
    }

    @Test("stores during the passes are each copied once, and the passes end at the threshold")
    func storesBetweenPasses() throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let driver = MachineDriver(machine: machine)
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 2, minProgress: 0, blackoutTargetNanoseconds: 0),
            beforePass: { pass in
                if pass == 1 { for frame in 100..<110 { driver.store(frame: frame) } }
            },
            duringPass: { pass in
                switch pass {
                // Frame 105 was harvested by this very pass: the store races its copy.
                case 1: for frame in [7, 105, 300, 3000] { driver.store(frame: frame) }
                case 2: driver.store(frame: 4000)
                default: break
                }
            })
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.map(\.dirtyFrames) == [10, 4])
        #expect(summary.passes.map(\.remainingDirtyFrames) == [4, 1])
        #expect(summary.blackout?.finalFrames == 1)
        #expect(differingFrames(machine) == [])
        // In lockstep a store reaches both modules.
        let value = driver.store(frame: 5)
        #expect(driver.words(frame: 5) == (value, value))
    }

    @Test(
        "a blackout that copied a sample before deciding copies the rest, and every frame reaches the spare",
        arguments: [(40, [40]), (300, [150, 150]), (700, [350, 350]), (1_500, [512, 988])])
    func sampleCopiedFirst(dirty: Int, copies: [Int]) throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let driver = MachineDriver(machine: machine)
        // A target no look can miss: the first look samples the list, then finishes the blackout.
        let (summary, blackoutCopies) = runRecordingBlackoutCopies(
            machine, policy: DuplexPolicy(thresholdFrames: 2, minProgress: 0, blackoutTargetNanoseconds: 1_000_000_000),
            beforePass: { pass in
                if pass == 1 { for frame in 0..<10 { driver.store(frame: frame) } }
            },
            duringPass: { pass in
                // Every other frame, then a run of adjacent ones at the end.
                if pass == 1 { for i in 0..<dirty { driver.store(frame: i < dirty / 2 ? 2 * i : dirty + i) } }
            })
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.count == 1)
        #expect(summary.blackout?.finalFrames == dirty)
        // The sample (sixteen pieces), then the rest: each frame once. A list under 64 frames is
        // its own sample: copied whole before the decision, nothing left after it.
        #expect(blackoutCopies == copies)
        #expect(differingFrames(machine) == [])
    }

    @Test("a blackout the pass limit forces copies an eighth of a long list first, then the rest; nothing is lost")
    func forcedSampleCopiedFirst() throws {
        let machine = try EmulatedMachine(options: quietOptions(megabytes: 64, mmu: false))
        let driver = MachineDriver(machine: machine)
        // A target no blackout can meet: the pass limit ends the passes whatever the prediction.
        let (summary, blackoutCopies) = runRecordingBlackoutCopies(
            machine,
            policy: DuplexPolicy(thresholdFrames: 2, maxPasses: 1, minProgress: 0, blackoutTargetNanoseconds: 1),
            duringPass: { pass in
                if pass == 1 { for i in 0..<6_000 { driver.store(frame: 2 * i + i / 100) } }
            })
        #expect(summary.outcome == .duplexed(.maxPasses))
        #expect(summary.blackout?.finalFrames == 6_000)
        #expect(blackoutCopies == [750, 5_250])
        #expect(differingFrames(machine) == [])
    }

    @Test("negative control: a store the tracking never sees is caught by the verify")
    func untrackedStoreIsCaught() throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 2),
            beforePass: { _ in
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

    /// A huge page written before pass 1 (in three of its frames), then one of its frames written
    /// again once pass 1 has harvested it: returns the summary, the MMU's split count and the
    /// frames that differ afterwards.
    func hugePageDuplex(split: Bool) throws -> (summary: DuplexSummary, splits: Int, differing: [Int]) {
        var options = quietOptions()
        options.mmu.splitHugePages = split
        let machine = try EmulatedMachine(options: options)
        let driver = MachineDriver(machine: machine)
        let process = try driver.createProcess()
        let first = try driver.store(process, page: 512, huge: true)
        #expect(first % 512 == 0)
        let summary = run(
            machine, policy: DuplexPolicy(thresholdFrames: 0, minProgress: 0, blackoutTargetNanoseconds: 0),
            beforePass: { pass in
                if pass == 1 {
                    for page in [512 + 7, 512 + 100, 512 + 511] { _ = try? driver.store(process, page: page) }
                }
            },
            duringPass: { pass in
                // After pass 1 harvested (and, with the split, split) the huge page.
                if pass == 1 { _ = try? driver.store(process, page: 512 + 300) }
            })
        let splits = try #require(machine.parts.mmu).statistics.snapshot["splits", default: 0]
        return (summary, splits, differingFrames(machine))
    }

    @Test("a store to a huge page dirties its 512 frames; the harvest splits it, so a later store dirties one")
    func hugePage() throws {
        let (summary, splits, differing) = try hugePageDuplex(split: true)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(splits >= 1)
        #expect(summary.passes.map(\.dirtyFrames).prefix(2) == [512, 1])
        #expect(differing == [])
    }

    @Test("negative control: without the split, the later store dirties the whole huge page again")
    func hugePageWithoutSplit() throws {
        let (summary, splits, differing) = try hugePageDuplex(split: false)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(splits == 0)
        #expect(summary.passes.map(\.dirtyFrames).prefix(2) == [512, 512])
        #expect(differing == [])
    }

    /// A process forked in pass 2, its child copying-on-write, a page remapped; in pass 3 the
    /// child writes its private copy again and exits. Only the departing entry's dirty bit says
    /// that last store happened.
    func forkDuplex(departingHook: Bool) throws -> (summary: DuplexSummary, machine: EmulatedMachine) {
        var options = quietOptions()
        options.mmu.departingHook = departingHook
        let machine = try EmulatedMachine(options: options)
        let driver = MachineDriver(machine: machine)
        let parent = try driver.createProcess()
        for page in [10, 11, 12, 700, 1500] { try driver.store(parent, page: page) }
        let child = Mutex<MachineDriver.Process?>(nil)
        let summary = run(
            machine,
            policy: DuplexPolicy(thresholdFrames: 0, maxPasses: 5, minProgress: 0, blackoutTargetNanoseconds: 0),
            beforePass: { pass in
                switch pass {
                case 2:
                    _ = try? driver.store(parent, page: 10)
                    try? driver.remap(parent, page: 700)
                    guard let forked = try? driver.fork(parent) else { return }
                    child.withLock { $0 = forked }
                    _ = try? driver.store(forked, page: 10)  // breaks the shared table, copies the frame
                    _ = try? driver.store(forked, page: 11)  // a private copy, harvested by pass 2
                    _ = try? driver.store(parent, page: 1500)
                case 3:
                    guard let forked = child.withLock({ $0 }) else { return }
                    _ = try? driver.store(forked, page: 11)  // no fault: only the entry's dirty bit
                    try? driver.exit(forked)
                default: break
                }
            },
            duringPass: { pass in
                // Keeps the passes going: a store after each of the first two harvests.
                switch pass {
                case 1: _ = try? driver.store(parent, page: 1500)
                case 2: _ = try? driver.store(parent, page: 12)
                default: break
                }
            })
        return (summary, machine)
    }

    @Test("fork, copy-on-write, remap and exit between passes lose nothing")
    func forkCopyOnWriteRemapExit() throws {
        let (summary, machine) = try forkDuplex(departingHook: true)
        #expect(summary.isDuplexed, "\(summary.message)")
        #expect(summary.passes.count >= 3, "the events happened between passes")
        let events = try #require(machine.parts.mmu).statistics.snapshot
        for kind in ["forks", "exits", "remaps", "table_copies", "frame_copies"] {
            #expect(events[kind, default: 0] > 0, "no \(kind) happened: \(events)")
        }
        #expect(differingFrames(machine) == [])
    }

    @Test("negative control: the same events without the departing-entry hook lose frames, and the verify finds them")
    func forkWithoutDepartingHook() throws {
        let (summary, machine) = try forkDuplex(departingHook: false)
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(!differingFrames(machine).isEmpty)
    }
}
