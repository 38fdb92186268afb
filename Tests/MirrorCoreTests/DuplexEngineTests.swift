import MirrorCore
import MirrorTestSupport
import Synchronization
import Testing

/// The engine's state machine and its classic guards (threshold, pass limit, stall), with the
/// blackout target off: ConvergenceTests covers the target and the throttles.
@Suite("Duplex engine state machine and guards")
struct DuplexEngineTests {
    @Test("passes end at the threshold; states run idle → … → duplexed in order")
    func thresholdEndsPasses() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 20_000, 8_000, 900])
        let engine = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000, blackoutTargetNanoseconds: 0))
        let states = Mutex<[DuplexState]>([])
        let summary = engine.run { event in
            if case .stateChanged(_, let to) = event { states.withLock { $0.append(to) } }
        }
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(summary.passes.map(\.dirtyFrames) == [50_000, 20_000, 8_000])
        #expect(summary.blackout?.finalFrames == 900)
        #expect(states.withLock { $0 } == [.tracking, .fullCopy, .passes, .blackout, .verify, .duplexed])
        #expect(summary.verify?.framesChecked == hardware.geometry.frameCount)
        #expect(hardware.snapshot.lockstep)
        #expect(!hardware.snapshot.inBlackout)
    }

    @Test("max_passes ends the passes; the blackout still happens and the summary says why")
    func maxPassesGuard() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 40_000, 30_000, 20_000, 10_000, 5_000])
        let engine = DuplexEngine(
            hardware: hardware,
            policy: DuplexPolicy(thresholdFrames: 10, maxPasses: 3, minProgress: 0, blackoutTargetNanoseconds: 0))
        let summary = engine.run()
        #expect(summary.passes.count == 3)
        #expect(summary.passEndReason == .maxPasses)
        #expect(summary.outcome == .duplexed(.maxPasses))
        #expect(summary.blackout?.finalFrames == 20_000)
        #expect(summary.isDuplexed)
    }

    @Test("a pass that shrinks the dirty set by less than min_progress ends the passes as stalled")
    func stallRule() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 30_000, 29_500, 29_000])
        let engine = DuplexEngine(
            hardware: hardware,
            policy: DuplexPolicy(thresholdFrames: 10, maxPasses: 30, minProgress: 0.05, blackoutTargetNanoseconds: 0))
        let summary = engine.run()
        #expect(summary.passes.map(\.dirtyFrames) == [50_000, 30_000, 29_500])
        #expect(summary.passEndReason == .stalled)
        #expect(summary.blackout?.finalFrames == 29_000)
        #expect(summary.isDuplexed)
    }

    @Test("min_progress = 0 turns the stall rule off")
    func stallRuleOff() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 5_000, 5_000, 5_000])
        let engine = DuplexEngine(
            hardware: hardware,
            policy: DuplexPolicy(thresholdFrames: 10, maxPasses: 4, minProgress: 0, blackoutTargetNanoseconds: 0))
        #expect(engine.run().passEndReason == .maxPasses)
    }

    @Test("a frame that differs after the final copy fails the duplex: no lockstep, failed, frames named")
    func verifyFailureIsNeverDuplexed() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], differingFrames: [7_700, 42_420])
        let engine = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000, blackoutTargetNanoseconds: 0))
        let summary = engine.run()
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(summary.finalState == .failed)
        #expect(summary.failedIn == .verify)
        #expect(summary.verify?.mismatches == 2)
        #expect(summary.verify?.firstMismatches == [7_700, 42_420])
        #expect(summary.message.contains("2 frames differ"))
        #expect(summary.message.contains("7700, 42420"))
        #expect(!hardware.snapshot.lockstep, "a failed verify must switch lockstep off")
        #expect(!hardware.snapshot.inBlackout)
        #expect(
            hardware.snapshot.blackouts == 3,
            "the final blackout, then one short confirming blackout for each chunk (16384 frames) with differences")
    }

    @Test("with verify_in_blackout, a final frame that differs fails before lockstep is ever switched on")
    func finalCopyFailure() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], differingFrames: [42])
        let policy = DuplexPolicy(
            thresholdFrames: 1_000, verifyFinalFramesInBlackout: true, blackoutTargetNanoseconds: 0)
        let summary = DuplexEngine(hardware: hardware, policy: policy).run()
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(summary.failedIn == .blackout)
        #expect(summary.verify?.firstMismatches == [42])
        #expect(!hardware.snapshot.calls.contains("lockstep(true)"))
        #expect(!hardware.snapshot.inBlackout)
    }

    @Test("a stop request ends the duplex as failed/stopped, naming the state, with the CPUs running")
    func stopRequest() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 50_000])
        let token = DuplexStopToken()
        let engine = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 10, minProgress: 0, blackoutTargetNanoseconds: 0),
            stopToken: token)
        let summary = engine.run { event in
            if case .passCompleted(let pass, _, _) = event, pass.pass == 2 { token.requestStop() }
        }
        #expect(summary.outcome == .failed(.stopped))
        #expect(summary.failedIn == .passes)
        #expect(summary.message.contains("in state passes"))
        #expect(!hardware.snapshot.inBlackout)
        #expect(!hardware.snapshot.tracking)
    }

    @Test("a policy replaced mid-duplex applies from the next pass")
    func policyUpdate() {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 40_000, 30_000, 20_000, 10_000])
        let engine = DuplexEngine(
            hardware: hardware,
            policy: DuplexPolicy(thresholdFrames: 10, maxPasses: 30, minProgress: 0, blackoutTargetNanoseconds: 0))
        let summary = engine.run { event in
            if case .passCompleted(let pass, _, _) = event, pass.pass == 1 {
                engine.updatePolicy(
                    DuplexPolicy(thresholdFrames: 25_000, maxPasses: 30, minProgress: 0, blackoutTargetNanoseconds: 0))
            }
        }
        #expect(summary.passes.count == 3)
        #expect(summary.thresholdFrames == 25_000)
        #expect(summary.passEndReason == .threshold)
    }

    @Test("the DMA dual-write policy reaches the hardware before tracking starts")
    func dualWriteBeforeTracking() {
        let hardware = ScriptedHardware(dirtyPerPass: [10])
        _ = DuplexEngine(
            hardware: hardware,
            policy: DuplexPolicy(thresholdFrames: 100, dmaDualWrite: false, blackoutTargetNanoseconds: 0)
        ).run()
        let calls = hardware.snapshot.calls
        #expect(calls.prefix(2) == ["dualWrite(false)", "startTracking"])
    }

    @Test("by default the final frames are compared after the blackout, with every other frame")
    func finalFramesVerifiedAfterBlackout() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], differingFrames: [42])
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000, blackoutTargetNanoseconds: 0)
        ).run()
        #expect(summary.outcome == .failed(.verifyMismatch))
        #expect(summary.failedIn == .verify)
        #expect(hardware.snapshot.verifiesInBlackout == 1, "only the confirming blackout compares frames")
        #expect(summary.verify?.firstMismatches == [42])
        #expect(!hardware.snapshot.lockstep, "lockstep is switched off again when the verify fails")
    }

    @Test("a blackout that cannot be entered fails the duplex as a hardware error, lockstep off, CPUs running")
    func blackoutFailure() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], failBlackoutFrom: 1)
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000, blackoutTargetNanoseconds: 0)
        ).run()
        #expect(summary.outcome == .failed(.hardwareError))
        #expect(summary.failedIn == .blackout)
        #expect(!hardware.snapshot.lockstep && !hardware.snapshot.inBlackout && !hardware.snapshot.tracking)
    }

    @Test("a confirming blackout that cannot be entered is a hardware error, never a confirmed mismatch")
    func confirmFailure() {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], differingFrames: [7_700], failBlackoutFrom: 2)
        let summary = DuplexEngine(
            hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000, blackoutTargetNanoseconds: 0)
        ).run()
        #expect(summary.outcome == .failed(.hardwareError))
        #expect(summary.failedIn == .verify)
        #expect(!hardware.snapshot.lockstep, "lockstep is switched off again")
        #expect(!hardware.snapshot.inBlackout)
    }

    @Test("a scrub while duplexed compares the slice and reports confirmed differences")
    func scrub() throws {
        let hardware = ScriptedHardware(dirtyPerPass: [10], differingFrames: [50_000, 70_000])
        let engine = DuplexEngine(hardware: hardware, policy: DuplexPolicy(blackoutTargetNanoseconds: 0))
        let clean = try engine.scrub(frames: 0..<40_000)
        #expect(clean.framesChecked == 40_000)
        #expect(clean.mismatches == 0)
        let dirty = try engine.scrub(frames: 40_000..<80_000)
        #expect(dirty.mismatches == 2)
        #expect(dirty.firstMismatches == [50_000, 70_000])
        #expect(
            hardware.snapshot.blackouts == 2,
            "differences are confirmed with the CPUs stopped, once per chunk that had any")
    }

    @Test("the summary encodes with the documented keys")
    func summaryKeys() throws {
        let summary = DuplexEngine(
            hardware: ScriptedHardware(dirtyPerPass: [10]), policy: DuplexPolicy(blackoutTargetNanoseconds: 0)
        ).run()
        let mirror = try summary.jsonObject()
        for key in [
            "result", "reason", "message", "state", "backend", "memory_bytes", "frame_size", "frames",
            "threshold_frames", "pass_end_reason", "full_copy", "passes", "blackout", "verify", "total_us",
            "hardware_statistics",
        ] {
            #expect(mirror[key] != nil, "missing \(key)")
        }
        let blackout = try #require(mirror["blackout"] as? [String: Any])
        for key in ["duration_us", "stop_us", "final_frames", "final_copy_us", "verify_us"] {
            #expect(blackout[key] != nil, "blackout.\(key)")
        }
        let verify = try #require(mirror["verify"] as? [String: Any])
        for key in ["frames_checked", "mismatches", "first_mismatches", "candidates", "duration_us", "confirm_us"] {
            #expect(verify[key] != nil, "verify.\(key)")
        }
    }
}
