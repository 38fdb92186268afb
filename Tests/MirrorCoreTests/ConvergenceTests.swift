import MirrorCore
import MirrorTestSupport
import Synchronization
import Testing

/// The blackout target, the convergence policies and the deadline, on test doubles whose costs
/// and CPUs run on a clock the test owns: every figure below is exact, in every run.
@Suite("Blackout target, throttle, dirty-limit, deadline")
struct ConvergenceTests {
    /// A workload one CPU of which dirties 4 million frames a second, two others a thousand.
    static let mixed: [ModelHardware.CPU] = [
        .init(storesPerSecond: 40e6, dirtyFramesPerSecond: 4e6),
        .init(storesPerSecond: 1e5, dirtyFramesPerSecond: 1e3),
        .init(storesPerSecond: 1e5, dirtyFramesPerSecond: 1e3),
    ]

    func run(_ hardware: ModelHardware, _ configure: (inout DuplexPolicy) -> Void) -> (DuplexSummary, [DuplexEvent]) {
        var policy = DuplexPolicy(thresholdFrames: 64)
        configure(&policy)
        let events = Mutex<[DuplexEvent]>([])
        let summary = DuplexEngine(hardware: hardware, policy: policy, clock: hardware.clock).run { event in
            events.withLock { $0.append(event) }
        }
        return (summary, events.withLock { $0 })
    }

    @Test("the passes end once the predicted blackout fits the target, and the prediction is the blackout")
    func target() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 900, 50])
        let policy = DuplexPolicy(thresholdFrames: 10)
        let summary = DuplexEngine(hardware: hardware, policy: policy, clock: hardware.clock).run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.map(\.dirtyFrames) == [50_000, 20_000, 8_000])
        // Stop 1 µs + a look at the dirty set 10 µs (the final copy takes its list) + the frames at
        // the 0.5 µs a frame of a split list that the samples measured (the 900 frames' own sample
        // of 450 copied first).
        #expect(summary.passes.map(\.predictedBlackoutMicroseconds) == [10_011, 4_011, 461])
        #expect(summary.blackout?.finalFrames == 900)
        #expect(summary.blackout?.predictedMicroseconds == 461)
        #expect(summary.blackout?.durationMicroseconds == 461)
        #expect(summary.blackout?.finalHarvestMicroseconds == 10)
    }

    @Test("a split copy slower than assumed is measured, and the prediction is still the blackout")
    func splitCopyMeasured() {
        // Two threads only 1.25 times as fast as one (a second thread that starts late): with a
        // constant 1.8 the 900 frames would be predicted at 511 µs and take 731.
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 900, 50], splitSpeedup: 1.25)
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 10), clock: hardware.clock)
            .run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.blackout?.finalFrames == 900)
        #expect(summary.blackout?.predictedMicroseconds == 731)
        #expect(summary.blackout?.durationMicroseconds == 731)
    }

    @Test("a long list is sampled before the decision: the rest is predicted from it, and no frame is copied twice")
    func sampleBeforeDecision() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 1_100, 50], splitSpeedup: 1.25)
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 10), clock: hardware.clock)
            .run()
        #expect(summary.outcome == .duplexed(.target))
        // Stop 1 µs + look 10 µs + a sample of 512 frames at 0.8 µs (409.6 µs), then the other 588
        // predicted from it (470.4 µs): the blackout goes on, and its copy is the 1,100 frames once.
        #expect(summary.passes.last?.predictedBlackoutMicroseconds == 891)
        #expect(summary.blackout?.finalFrames == 1_100)
        #expect(summary.blackout?.predictedMicroseconds == 891)
        #expect(summary.blackout?.durationMicroseconds == 891)
        #expect(summary.blackout?.finalCopyMicroseconds == 880)
    }

    @Test(
        "a short list is copied whole before the decision: its blackout is known but for the resume, whatever a frame of it costs"
    )
    func shortListCopiedFirst() {
        // Each copy costs 20 µs besides its frames. Predicted from the 512-frame sample of the
        // 3,000-frame look (a probe: over the 1 ms target), the blackout of the final 40 frames
        // would be 49 µs; it takes 71 (stop 1, look 10, copy 60).
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 3_000, 40], copyCallNanoseconds: 20_000)
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 10), clock: hardware.clock)
            .run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.blackout?.finalFrames == 40)
        #expect(summary.blackout?.finalCopyMicroseconds == 60)
        #expect(
            summary.blackout?.predictedMicroseconds == summary.blackout?.durationMicroseconds,
            "predicted \(summary.blackout?.predictedMicroseconds ?? 0), took \(summary.blackout?.durationMicroseconds ?? 0)"
        )
    }

    @Test(
        "a dirty set too large for a probe, when the passes end anyway, is listed whole and predicted from a sample copied first"
    )
    func largeEndingSet() throws {
        // 400,000 frames; the passes stall at 140,000 dirty (over the 65,536 a probe lists), and
        // the CPUs dirty 10,000 more before they stop.
        let hardware = ScriptedHardware(
            frameCount: 400_000, dirtyPerPass: [200_000, 150_000, 140_000], splitSpeedup: 1.25,
            dirtiedDuringStop: 10_000)
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 64), clock: hardware.clock)
            .run()
        #expect(summary.outcome == .duplexed(.stalled))
        let blackout = try #require(summary.blackout)
        #expect(summary.passes.last?.remainingDirtyFrames == 140_000)
        #expect(blackout.finalFrames == 150_000, "every dirty frame at the stop, not the count before it")
        // Stop 1 µs + look 10 µs + 4,096 sample frames and 145,904 more at 0.8 µs.
        #expect(blackout.predictedMicroseconds == 120_011)
        #expect(blackout.durationMicroseconds == 120_011)
        #expect(blackout.finalCopyMicroseconds == 120_000, "the sample is part of the final copy, not copied twice")
    }

    @Test("a sample whose thread lost its CPU predicts the rest of the list at the pace its copy kept on the CPU")
    func sampleOffCPU() throws {
        // Split: the passes stall at 20,000 dirty; the blackout copies an eighth first (2,500
        // frames on two threads, 1,389 µs), the engine's thread off its CPU for 400 µs of it while
        // the other goes on alone (178 µs later). One thread: a look at 400 frames copies 200 first
        // (200 µs), the thread off its CPU for 100 µs of it. Predicted from the sample's whole
        // time, the rest would be predicted 1,245 µs and 100 µs longer than it takes.
        let cases: [(ScriptedHardware, PassEndReason, Int)] = [
            (
                ScriptedHardware(
                    dirtyPerPass: [50_000, 20_000], splitSpeedup: BlackoutModel.splitSpeedup,
                    descheduledInSample: 400_000),
                .stalled, 20_000
            ),
            (ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 400], descheduledInSample: 100_000), .target, 400),
        ]
        for (hardware, reason, frames) in cases {
            let summary = DuplexEngine(
                hardware: hardware, policy: DuplexPolicy(thresholdFrames: 64), clock: hardware.clock
            ).run()
            #expect(summary.outcome == .duplexed(reason))
            let blackout = try #require(summary.blackout)
            #expect(blackout.finalFrames == frames)
            let predicted = try #require(blackout.predictedMicroseconds)
            #expect(
                abs(Int(predicted) - Int(blackout.durationMicroseconds)) <= 1,
                "\(frames) frames: predicted \(predicted) µs, took \(blackout.durationMicroseconds)")
        }
    }

    @Test(
        "the threshold still ends the passes when it comes first, into a blackout over the target but within 1.5 times it"
    )
    func thresholdFirst() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 2_400, 50])
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 3_000), clock: hardware.clock
        ).run()
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.count == 2)
        #expect(summary.passes.last?.predictedBlackoutMicroseconds == 1_211)
        #expect(summary.blackout?.durationMicroseconds == 1_211)
    }

    @Test("a threshold blackout predicted far over the target is put off: the next pass's fits")
    func thresholdFarOverPutOff() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 900])
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 10_000), clock: hardware.clock
        ).run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.map(\.predictedBlackoutMicroseconds) == [10_011, 4_011, 461])
        #expect(summary.blackout?.durationMicroseconds == 461)
    }

    @Test("a threshold blackout that stays far over the target is put off three times, then taken")
    func thresholdFarOverTakenAtLast() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000])
        let policy = DuplexPolicy(thresholdFrames: 10_000, minProgress: 0)
        let summary = DuplexEngine(hardware: hardware, policy: policy, clock: hardware.clock).run()
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.count == 5)
        #expect(summary.blackout?.durationMicroseconds == 4_011)
    }

    @Test("the threshold counts the frames the blackout would copy: more found at the stop put it off")
    func thresholdAtTheLook() {
        // 2,500 dirty at the count (under the threshold of 3,000), 600 more by the time the CPUs
        // are stopped: 3,100 would take 1,561 µs, over the target. The passes go on; the next
        // look finds 1,000 frames, which fit.
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 2_500, 400, 50], dirtiedDuringStop: 600)
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 3_000), clock: hardware.clock
        ).run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.map(\.remainingDirtyFrames) == [20_000, 2_500, 400])
        #expect(summary.passes.map(\.predictedBlackoutMicroseconds) == [10_311, 1_561, 511])
        #expect(summary.blackout?.finalFrames == 1_000)
        #expect(summary.blackout?.durationMicroseconds == 511)
    }

    @Test(
        "a threshold missed at the stop gives way to the pass limit and to a stall: the passes still end",
        arguments: [(0.0, PassEndReason.maxPasses, 5), (0.05, .stalled, 4)])
    func thresholdMissedStillEnds(minProgress: Double, reason: PassEndReason, passes: Int) {
        // Every look finds 3,100 frames, over the threshold of 3,000 and the target: without the
        // pass limit or the stall the passes would go on until a deadline, here none.
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 2_500], dirtiedDuringStop: 600)
        let policy = DuplexPolicy(
            thresholdFrames: 3_000, maxPasses: 5, minProgress: minProgress, maxDurationNanoseconds: 0)
        let summary = DuplexEngine(hardware: hardware, policy: policy, clock: hardware.clock).run()
        #expect(summary.outcome == .duplexed(reason))
        #expect(summary.passes.count == passes)
        #expect(summary.blackout?.finalFrames == 3_100)
    }

    @Test("a stop slower than the target is reported, and no target is claimed")
    func stopExceedsTarget() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 900], stopNanoseconds: 2_000_000)
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000), clock: hardware.clock
        ).run()
        #expect(summary.convergence.stopExceedsTarget)
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.count == 6, "the threshold's blackout is put off three times, hoping for a faster stop")
    }

    @Test("slow stops of the probes alone are not reported when the blackout taken stopped in time")
    func slowProbeStopsOnly() {
        let hardware = ScriptedHardware(
            dirtyPerPass: [50_000, 20_000, 8_000, 900], stopNanoseconds: 2_000_000, fastStopsFrom: 3)
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000), clock: hardware.clock
        ).run()
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.blackout?.stopMicroseconds == 1)
        #expect(!summary.convergence.stopExceedsTarget, "the blackout taken stopped in 1 µs")
    }

    @Test(
        "time the host takes from the engine's thread in the blackout is measured apart, and blamed for an overrun only when it explains it"
    )
    func offCPU() throws {
        for (descheduled, blamed) in [(UInt64(0), false), (2_000_000, true), (500_000, false)] {
            let hardware = ScriptedHardware(
                dirtyPerPass: [50_000, 20_000, 8_000, 40], descheduledInBlackoutCopy: descheduled)
            let summary = DuplexEngine(
                hardware: hardware, policy: DuplexPolicy(thresholdFrames: 64), clock: hardware.clock
            ).run()
            #expect(summary.isDuplexed)
            let blackout = try #require(summary.blackout)
            #expect(blackout.finalFrames == 40)
            #expect(
                blackout.offCPUMicroseconds == (descheduled > 0 ? descheduled / 1_000 - 1 : 0),
                "off CPU in the final copy, less the stop of 1 µs (counted as if it had slept)")
            #expect(blackout.durationMicroseconds == 51 + descheduled / 1_000, "stop 1 + look 10 + 40 frames at 1 µs")
            #expect(blackout.overTargetOffCPU(targetMicroseconds: 1_000) == blamed)
            #expect(!blackout.overTargetOffCPU(targetMicroseconds: 0), "no target, no overrun")
        }
    }

    @Test("a copy made longer by the hardware's own copying thread off its CPU counts as time the host took too")
    func helperOffCPU() throws {
        let hardware = ScriptedHardware(
            dirtyPerPass: [50_000, 20_000, 8_000, 40], helperDescheduledInBlackoutCopy: 2_000_000)
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 64), clock: hardware.clock)
            .run()
        let blackout = try #require(summary.blackout)
        #expect(blackout.durationMicroseconds == 2_051)
        #expect(
            blackout.offCPUMicroseconds == 2_000, "the engine's thread waited on its CPU; the helper was off its own")
        #expect(blackout.overTargetOffCPU(targetMicroseconds: 1_000))
    }

    @Test(
        "throttle: every CPU alike, 20 % first, then +10 % per pass that does not converge; lifted after the blackout")
    func throttle() throws {
        let hardware = ModelHardware(cpus: Self.mixed)
        let (summary, events) = run(hardware) { $0.convergence = .throttle }
        #expect(summary.outcome == .duplexed(.target))
        let steps = summary.passes.map { $0.cpuThrottlePercent.map { Int($0.rounded()) } }
        let distinct = steps.reduce(into: [[Int]]()) { if $0.last != $1 { $0.append($1) } }
        #expect(distinct.first == [0, 0, 0])
        let ramp = distinct.dropFirst().map { $0[0] }
        #expect(ramp.count >= 3)
        #expect(ramp == Array([20, 30, 40, 50, 60, 70, 80, 90, 99].prefix(ramp.count)), "QEMU's steps: \(ramp)")
        #expect(distinct.allSatisfy { Set($0).count == 1 }, "every CPU alike")
        #expect(summary.convergence.maximumThrottlePercent == Double(ramp.last ?? 0))
        #expect(hardware.snapshot.throttle == [0, 0, 0], "lifted as the blackout ends")
        let engaged = events.filter { if case .throttleChanged(_, true, _) = $0 { return true } else { return false } }
        #expect(engaged.count == 1, "the engagement is reported once")
        #expect((summary.blackout?.durationMicroseconds ?? .max) <= 1_000)
    }

    @Test("dirty-limit: only the CPU that dirties fast is slowed; the light ones keep their pace")
    func dirtyLimit() throws {
        let hardware = ModelHardware(cpus: Self.mixed)
        let (summary, _) = run(hardware) { $0.convergence = .dirtyLimit }
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.allSatisfy { $0.cpuThrottlePercent[1] == 0 && $0.cpuThrottlePercent[2] == 0 })
        #expect(summary.passes.contains { $0.cpuThrottlePercent[0] > 90 })
        let slowdown = summary.convergence.cpuSlowdown
        #expect(slowdown.count == 3)
        #expect(slowdown[1] > 0.99 && slowdown[2] > 0.99, "light CPUs: \(slowdown)")
        #expect((summary.blackout?.durationMicroseconds ?? .max) <= 1_000)
        #expect(hardware.snapshot.throttle == [0, 0, 0])
    }

    @Test("dirty-limit spares the light CPUs that throttle slows, and converges in fewer passes")
    func dirtyLimitAgainstThrottle() {
        let (limited, _) = run(ModelHardware(cpus: Self.mixed)) { $0.convergence = .dirtyLimit }
        let (throttled, _) = run(ModelHardware(cpus: Self.mixed)) { $0.convergence = .throttle }
        #expect(limited.passes.count < throttled.passes.count)
        #expect(limited.convergence.throttledMicroseconds < throttled.convergence.throttledMicroseconds)
        #expect(limited.convergence.cpuSlowdown[1] > throttled.convergence.cpuSlowdown[1] + 0.3)
        // In the passes alone, where the policies act, the light CPU keeps its pace under
        // dirty-limit and loses more of it under throttle than over the whole duplex.
        #expect(limited.convergence.passesCPUSlowdown[1] > 0.99, "\(limited.convergence.passesCPUSlowdown)")
        #expect(throttled.convergence.passesCPUSlowdown[1] < throttled.convergence.cpuSlowdown[1])
    }

    @Test(
        "dirty-limit tightens the fast CPU when its limits let more through than its counter says, never the light ones"
    )
    func dirtyLimitCorrection() throws {
        // The fast CPU dirties eleven times what its counter sees, so its limits let through far
        // more than expected and the correction collapses (the old rule then slowed the light
        // CPUs 40 % too); the light ones dirty 50,000 frames a second each.
        let cpus: [ModelHardware.CPU] = [
            .init(storesPerSecond: 40e6, dirtyFramesPerSecond: 2e6, uncountedDirtyFramesPerSecond: 2e7),
            .init(storesPerSecond: 1e6, dirtyFramesPerSecond: 5e4),
            .init(storesPerSecond: 1e6, dirtyFramesPerSecond: 5e4),
        ]
        let hardware = ModelHardware(cpus: cpus)
        let (summary, _) = run(hardware) { $0.convergence = .dirtyLimit }
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.convergence.cpuMaximumThrottlePercent.count == 3)
        let fast = try #require(summary.convergence.cpuMaximumThrottlePercent.first)
        #expect(fast > 50, "the fast CPU is the one slowed: \(summary.convergence.cpuMaximumThrottlePercent)")
        #expect(
            summary.convergence.cpuMaximumThrottlePercent.dropFirst() == [0, 0],
            "the light CPUs keep their pace: \(summary.passes.map(\.cpuThrottlePercent))")
        #expect((summary.blackout?.durationMicroseconds ?? .max) <= 1_000)
    }

    @Test(
        "a backend that cannot count per CPU gets its dirty rate shared out by stores; the heavy CPU is still the one slowed"
    )
    func ratesByStores() {
        let hardware = ModelHardware(cpus: Self.mixed, countsDirtyFramesPerCPU: false)
        let (summary, _) = run(hardware) { $0.convergence = .dirtyLimit }
        #expect(summary.outcome == .duplexed(.target))
        #expect(summary.passes.allSatisfy { $0.cpuThrottlePercent[0] >= $0.cpuThrottlePercent[1] })
        #expect(summary.convergence.cpuSlowdown[1] > 0.95, "\(summary.convergence.cpuSlowdown)")
    }

    @Test("none never slows a CPU: the passes stall and the blackout copies what is dirty")
    func none() {
        let hardware = ModelHardware(cpus: Self.mixed)
        let (summary, _) = run(hardware) { $0.convergence = .none }
        #expect(summary.outcome == .duplexed(.stalled))
        #expect(hardware.snapshot.throttleHistory.allSatisfy { $0.fraction == 0 })
        #expect(summary.convergence.maximumThrottlePercent == 0)
        #expect((summary.blackout?.finalFrames ?? 0) > 100_000)
    }

    /// A duplex that only the deadline ends: CPUs that dirty far more than a pass can copy within
    /// the target even at 99 %, no pass limit, no stall, a deadline of 3 s.
    func runToDeadline(_ convergence: ConvergencePolicy) -> (ModelHardware, DuplexSummary, [DuplexEvent]) {
        let furious = [ModelHardware.CPU](repeating: .init(storesPerSecond: 1e9, dirtyFramesPerSecond: 1e8), count: 2)
        let hardware = ModelHardware(cpus: furious)
        let (summary, events) = run(hardware) {
            $0.convergence = convergence
            $0.maxPasses = 100_000
            $0.minProgress = 0
            $0.maxDurationNanoseconds = 3_000_000_000
        }
        return (hardware, summary, events)
    }

    @Test("the deadline: maximum throttle, one more pass, a verified blackout; the duplex never loops forever")
    func deadline() {
        let (hardware, summary, events) = runToDeadline(.throttle)
        #expect(summary.outcome == .duplexed(.deadline))
        #expect(summary.convergence.deadlineReached)
        #expect(summary.passes.last?.cpuThrottlePercent == [99, 99], "the pass after the deadline runs at the maximum")
        #expect(summary.verify?.framesChecked == hardware.geometry.frameCount)
        #expect(
            events.contains {
                if case .throttleChanged(_, _, let why) = $0 {
                    return why.contains("max_duration")
                } else {
                    return false
                }
            })
    }

    @Test("under `none` the deadline takes the blackout without slowing any CPU")
    func deadlineWithoutThrottle() {
        let (hardware, summary, events) = runToDeadline(.none)
        #expect(summary.outcome == .duplexed(.deadline))
        #expect(summary.passes.allSatisfy { $0.cpuThrottlePercent.allSatisfy { $0 == 0 } })
        #expect(summary.convergence.maximumThrottlePercent == 0)
        #expect(!events.contains { if case .throttleChanged = $0 { return true } else { return false } })
        #expect(summary.verify?.framesChecked == hardware.geometry.frameCount)
    }

    @Test("the workload's slowdown compares its store rate during the duplex with the rate just before")
    func slowdown() throws {
        let hardware = ModelHardware(cpus: [.init(storesPerSecond: 1e6, dirtyFramesPerSecond: 100)])
        let (summary, _) = run(hardware) { $0.convergence = .dirtyLimit }
        let convergence = summary.convergence
        #expect(convergence.baselineStoresPerSecond == 1e6)
        let slowdown = try #require(convergence.workloadSlowdown)
        #expect(slowdown > 0.99 && slowdown <= 1.0001, "an unthrottled workload keeps its pace: \(slowdown)")
        #expect(convergence.maximumThrottlePercent == 0)
    }
}
