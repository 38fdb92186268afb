import Foundation
import MirrorCore
import Synchronization
import Testing

@testable import MirrorEmulation

extension MachineSuites {
    @Suite("Duplex end to end on the emulated machine, CPUs and DMA running")
    struct DuplexEndToEndTests {
        @Test(
            "spare equals active byte for byte after duplexing under CPU stores and DMA",
            arguments: [EmulatedMachine.Options.Pattern.hotset, .uniform, .sequential], [UInt64(1), 2, 3])
        func spareEqualsActive(pattern: EmulatedMachine.Options.Pattern, seed: UInt64) throws {
            let machine = try EmulatedMachine(options: testOptions(pattern: pattern, seed: seed))
            let summary = try duplex(machine, policy: testPolicy)
            #expect(summary.isDuplexed, "\(summary.message)")
            #expect(summary.verify?.framesChecked == machine.geometry.frameCount)
            #expect(summary.verify?.mismatches == 0)
            let dirtied: Int = summary.passes.reduce(0) { $0 + $1.dirtyFrames } + (summary.blackout?.finalFrames ?? 0)
            #expect(dirtied > 0, "the workload dirtied nothing during the duplex: the test proves nothing")
            #expect(differingFrames(machine) == [], "lockstep must keep the modules equal after the duplex")
        }

        @Test(
            "without the MMU (stores mark the frame bitmap directly) the duplex is exact too",
            arguments: [UInt64(1), 2])
        func withoutMMU(seed: UInt64) throws {
            var options = testOptions(seed: seed)
            options.mmu.enabled = false
            options.workload.churn = 0
            let machine = try EmulatedMachine(options: options)
            #expect(machine.parts.mmu == nil)
            let summary = try duplex(machine, policy: testPolicy)
            #expect(summary.isDuplexed, "\(summary.message)")
            #expect(differingFrames(machine) == [])
        }

        @Test(
            "under page-table churn with huge pages, fork, exit and DMA, the spare equals the active",
            arguments: [UInt64(1), 2, 3, 4, 5, 6])
        func churnHugePagesAndFork(seed: UInt64) throws {
            var options = testOptions(pattern: seed % 2 == 0 ? .uniform : .hotset, seed: seed)
            options.memorySize = 64 << 20
            options.workload.churn = 4000
            options.mmu.hugeShare = 0.5
            let machine = try EmulatedMachine(options: options)
            let mmu = try #require(machine.parts.mmu)
            // Run until every kind of page-table event has happened, so that the duplex meets them all.
            try machine.start()
            let kinds = ["maps", "huge_maps", "unmaps", "remaps", "forks", "exits", "table_copies", "frame_copies"]
            waitUntil("every kind of page-table event happened") {
                let events = mmu.statistics.snapshot
                return kinds.allSatisfy { events[$0, default: 0] > 0 }
            }
            let summary = try duplex(machine, policy: testPolicy)
            #expect(summary.isDuplexed, "\(summary.message)")
            #expect(differingFrames(machine) == [])
        }

        @Test("without convergence control a busy workload that never converges still ends in a verified blackout")
        func nonConvergingWorkload() throws {
            var options = testOptions(pattern: .uniform)
            options.workload.rate = .limited(bytesPerSecond: 256 << 20)
            let machine = try EmulatedMachine(options: options)
            var policy = testPolicy
            policy.convergence = .none
            policy.blackoutTargetNanoseconds = 0
            // The workload never converges however the threads are scheduled (on two busy cores the
            // engine and its copy helper can hold both through a pass's copy, and the writers barely
            // run): in every pass, between its harvest and its count, the engine waits for four
            // uniform stores per frame of the module, so that ~98 % of the frames are dirty again.
            let frames = machine.geometry.frameCount
            let hardware = InterleavedHardware(
                machine,
                duringPass: { _ in
                    let reached = machine.storeCount + 4 * frames
                    waitUntil("the CPUs made \(4 * frames) stores during the pass") { machine.storeCount >= reached }
                })
            try machine.start()
            waitUntil("the CPUs have stored") { machine.storeCount > 0 }
            let summary = DuplexEngine(hardware: hardware, policy: policy).run { _ in }
            let after = machine.storeCount + 20_000
            waitUntil("the CPUs made 20000 more stores in lockstep") { machine.storeCount >= after }
            machine.shutdown()
            #expect(summary.isDuplexed, "\(summary.message)")
            let passes = summary.passes.map { "\($0.dirtyFrames)/\($0.remainingDirtyFrames)" }
            #expect(summary.passEndReason != .threshold, "\(passes)")
            #expect((summary.blackout?.finalFrames ?? 0) > testPolicy.thresholdFrames, "\(passes)")
            #expect(summary.convergence.maximumThrottlePercent == 0)
            #expect(differingFrames(machine) == [])
        }

        @Test(
            "an unlimited writer is slowed until its dirty set fits the blackout target, and the copy is exact",
            arguments: [EmulatedMachine.Options.Pattern.uniform, .hotset])
        func unlimitedWriterConverges(pattern: EmulatedMachine.Options.Pattern) throws {
            var options = testOptions(pattern: pattern)
            options.workload.rate = .unlimited
            let machine = try EmulatedMachine(options: options)
            // However the threads are scheduled (a busy machine may give the writer no core during
            // a pass), the uniform writer outruns the copy until it is slowed: in every pass until
            // the first throttle, between the pass's harvest and its count, the engine waits for
            // four stores per frame of the module (uniform stores land on random frames: ~98 % of
            // them are dirty again), so that each pass leaves the dirty set as large as it found it.
            let throttled = Atomic<Bool>(false)
            let frames = machine.geometry.frameCount
            let hardware = InterleavedHardware(
                machine,
                duringPass: { _ in
                    guard pattern == .uniform, !throttled.load(ordering: .relaxed) else { return }
                    let reached = machine.storeCount + 4 * frames
                    waitUntil("the CPUs made \(4 * frames) stores during the pass") { machine.storeCount >= reached }
                })
            try machine.start()
            waitUntil("the CPUs have stored") { machine.storeCount > 0 }
            let summary = DuplexEngine(hardware: hardware, policy: testPolicy).run { event in
                switch event {
                case .throttleChanged:
                    throttled.store(true, ordering: .relaxed)
                case .fullCopyCompleted:
                    let reached = machine.storeCount + (pattern == .uniform ? 4 * frames : 1_000)
                    waitUntil("the CPUs made stores after the full copy") { machine.storeCount >= reached }
                default:
                    break
                }
            }
            let after = machine.storeCount + 20_000
            waitUntil("the CPUs made 20000 more stores in lockstep") { machine.storeCount >= after }
            machine.shutdown()
            #expect(summary.isDuplexed, "\(summary.message)")
            let reason = try #require(summary.passEndReason)
            // The target, unless this host could not even stop the CPUs within it (then it says so).
            // Each pass as dirty/remaining@throttle %, should it fail on a host busier than here.
            let passes = summary.passes.map {
                "\($0.dirtyFrames)/\($0.remainingDirtyFrames)@\($0.throttlePercent)"
            }
            #expect(
                reason == .target || reason == .threshold || summary.convergence.stopExceedsTarget,
                "\(reason): \(passes); \(summary.message)")
            let predicted = try #require(summary.blackout?.predictedMicroseconds)
            #expect(
                predicted <= summary.convergence.targetMicroseconds || reason == .threshold
                    || summary.convergence.stopExceedsTarget)
            if pattern == .uniform {
                #expect(summary.convergence.maximumThrottlePercent > 0, "an unlimited writer everywhere must be slowed")
            }
            #expect(
                (0..<machine.cpuCount).allSatisfy { machine.throttle(cpu: $0) == 0 },
                "the throttle is lifted after the blackout")
            #expect(differingFrames(machine) == [])
        }

        @Test("a lackey trace drives the CPUs and the duplex is exact")
        func traceWorkload() throws {
            let path = try LackeyTraceTests.writeTrace(pages: 3_000, stores: 40_000, seed: 7)
            defer { unlink(path) }
            var options = testOptions(pattern: .trace)
            options.workload.tracePath = path
            let machine = try EmulatedMachine(options: options)
            #expect(machine.replayedTrace?.distinctPages == 3_000)
            let summary = try duplex(machine, policy: testPolicy)
            #expect(summary.isDuplexed, "\(summary.message)")
            #expect(differingFrames(machine) == [])
        }

        @Test("negative control: without DMA dual-write the verify finds the frames DMA changed, and the duplex fails")
        func dmaWithoutDualWriteFails() throws {
            // No page-table churn: a region mapped while the verify still runs in lockstep is
            // zero-filled in both modules and would mend frames already reported (11 of 16 once,
            // on a loaded host). Without it nothing but the DMA engine writes the DMA's lanes, so
            // every frame reported must still differ when the machine has stopped.
            var options = testOptions()
            options.workload.churn = 0
            let machine = try EmulatedMachine(options: options)
            var policy = testPolicy
            policy.dmaDualWrite = false
            let summary = try duplex(machine, policy: policy, storesAfter: 0)
            #expect(summary.outcome == .failed(.verifyMismatch))
            #expect((summary.verify?.mismatches ?? 0) > 0)
            #expect(summary.message.contains("differ between active and spare"))
            #expect(!machine.isLockstep)
            // Our own comparison agrees: every frame the verify reported still differs.
            let differing = Set(differingFrames(machine))
            let reported: [Int] = summary.verify?.firstMismatches ?? []
            #expect(!reported.isEmpty)
            #expect(
                reported.allSatisfy(differing.contains),
                "reported \(reported), of them not differing now: \(reported.filter { !differing.contains($0) })")
        }

        @Test("negative control: a bit flipped in the spare after the final copy is caught")
        func flippedBitIsCaught() throws {
            var options = testOptions()
            options.faults.flipSpareBit = true
            let machine = try EmulatedMachine(options: options)
            let summary = try duplex(machine, policy: testPolicy)
            let flipped = try #require(machine.flippedSpareFrame)
            #expect(summary.outcome == .failed(.verifyMismatch))
            #expect(summary.verify?.mismatches == 1)
            #expect(summary.verify?.firstMismatches == [flipped])
            #expect(summary.message.contains("first: \(flipped)"))
        }

        @Test("the blackout stops every CPU and the DMA engine; leaving it resumes them")
        func blackoutStopsWriters() throws {
            let machine = try EmulatedMachine(options: testOptions())
            try machine.start()
            defer { machine.shutdown() }
            waitUntil("the CPUs have stored") { machine.storeCount > 0 }
            func checksum() -> UInt64 {
                let words = machine.active.base.assumingMemoryBound(to: UInt64.self)
                var sum: UInt64 = 0
                for i in 0..<(machine.geometry.byteCount / 8) { sum = sum &* 31 &+ words[i] }
                return sum
            }
            _ = try machine.enterBlackout()
            #expect(machine.parts.controller.everyWriterStopped, "enterBlackout returned with a writer running")
            let stores = machine.storeCount
            let stopped = checksum()
            #expect(checksum() == stopped, "memory changed while every writer was stopped")
            #expect(machine.storeCount == stores)
            #expect(throws: HardwareError.self) { try machine.enterBlackout() }
            machine.leaveBlackout()
            waitUntil("the CPUs store again") { machine.storeCount > stores }
            waitUntil("memory changes again") { checksum() != stopped }
        }

        @Test("file backing: after a duplex the two image files are byte-identical")
        func fileBacking() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-test-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var options = testOptions()
            options.backing = .file
            options.stateDirectory = dir
            do {
                let machine = try EmulatedMachine(options: options)
                let summary = try duplex(machine, policy: testPolicy)
                #expect(summary.isDuplexed, "\(summary.message)")
            }
            let active = try Data(contentsOf: URL(fileURLWithPath: dir + "/active.img"))
            let spare = try Data(contentsOf: URL(fileURLWithPath: dir + "/spare.img"))
            #expect(active.count == options.memorySize)
            #expect(active == spare)
        }
    }
}
