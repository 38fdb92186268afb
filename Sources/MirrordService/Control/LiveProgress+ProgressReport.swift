import MirrorCore
import MirrordControl

extension LiveProgress {
    /// The progress as `status` reports it: the last pass's values at the top, every pass in
    /// `passes`, and the seconds in lockstep counted up to `now` (monotonic nanoseconds).
    func report(now: UInt64 = MonotonicClock.nanoseconds()) -> ProgressReport {
        ProgressReport(
            engineState: EngineState(engineState), phaseFramesDone: phaseFrames?.done,
            phaseFramesTotal: phaseFrames?.total, pass: lastPass?.pass, dirtyFrames: lastPass?.remainingDirtyFrames,
            dirtyRate: lastPass.map { Int($0.dirtyRateFramesPerSecond) }, throttlePercent: lastPass?.throttlePercent,
            predictedBlackoutMicroseconds: lastPass?.predictedBlackoutMicroseconds,
            targetMicroseconds: targetMicroseconds, thresholdFrames: thresholdFrames,
            lastBlackoutMicroseconds: lastBlackout?.durationMicroseconds,
            lockstepSeconds: duplexedSince.map { Double(now &- $0) / 1e9 },
            passes: passes.map {
                PassReport(
                    pass: $0.pass, dirtyFrames: $0.dirtyFrames, remainingDirtyFrames: $0.remainingDirtyFrames,
                    dirtyRate: Int($0.dirtyRateFramesPerSecond),
                    predictedBlackoutMicroseconds: $0.predictedBlackoutMicroseconds, throttlePercent: $0.throttlePercent
                )
            })
    }
}

extension EngineState {
    /// The protocol's name for the engine's `state`.
    init(_ state: DuplexState) {
        switch state {
        case .idle: self = .idle
        case .tracking: self = .tracking
        case .fullCopy: self = .fullCopy
        case .passes: self = .passes
        case .blackout: self = .blackout
        case .verify: self = .verify
        case .duplexed: self = .duplexed
        case .firstEpoch: self = .firstEpoch
        case .replicating: self = .replicating
        case .failed: self = .failed
        }
    }
}
