import MirrorCore

/// The engine's progress as the last events left it, for the control socket's `status`: the
/// state, the current phase's frames, the last pass and the last blackout.
struct LiveProgress: Sendable, Encodable {
    /// The engine's state.
    var engineState: DuplexState = .idle
    /// Frames done and in all, of a full copy or verify in progress.
    var phaseFrames: (done: Int, total: Int)?
    /// The passes of the running (or last) duplex, the last one last.
    var passes: [DuplexSummary.Pass] = []
    /// The last pass of the running (or last) duplex.
    var lastPass: DuplexSummary.Pass? { passes.last }
    /// The target in force at the last pass (µs; 0: off), and the threshold.
    var targetMicroseconds: UInt64 = 0
    var thresholdFrames = 0
    /// The last blackout.
    var lastBlackout: DuplexSummary.Blackout?
    /// When the pair last became duplexed (monotonic nanoseconds), if it is.
    var duplexedSince: UInt64?

    /// Takes in one engine event.
    mutating func observe(_ event: DuplexEvent) {
        switch event {
        case .stateChanged(_, let to):
            engineState = to
            phaseFrames = nil
            if to == .tracking { passes = [] }
        case .progress(_, let done, let total):
            phaseFrames = (done, total)
        case .passCompleted(let pass, let threshold, let target):
            passes.append(pass)
            thresholdFrames = threshold
            targetMicroseconds = target
        case .blackoutCompleted(let blackout):
            lastBlackout = blackout
        case .finished(let summary):
            duplexedSince = summary.isDuplexed ? MonotonicClock.nanoseconds() : nil
        case .fullCopyCompleted, .throttleChanged, .passesEnded, .verifyCompleted:
            break
        }
    }

    enum CodingKeys: String, CodingKey {
        case engineState = "engine_state"
        case phaseDone = "phase_frames_done"
        case phaseTotal = "phase_frames_total"
        case pass
        case dirtyFrames = "dirty_frames"
        case dirtyRate = "dirty_rate_fps"
        case throttle = "throttle_percent"
        case predicted = "predicted_blackout_us"
        case target = "target_us"
        case threshold = "threshold_frames"
        case lastBlackout = "last_blackout_us"
        case lockstepSeconds = "lockstep_s"
        case passes
    }

    /// One pass as `status` lists it.
    private struct PassLine: Encodable {
        var pass: Int
        var dirtyFrames: Int
        var remainingDirtyFrames: Int
        var dirtyRate: Int
        var predicted: UInt64?
        var throttle: Double

        enum CodingKeys: String, CodingKey {
            case pass
            case dirtyFrames = "dirty_frames"
            case remainingDirtyFrames = "remaining_dirty_frames"
            case dirtyRate = "dirty_rate_fps"
            case predicted = "predicted_blackout_us"
            case throttle = "throttle_percent"
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(engineState.rawValue, forKey: .engineState)
        try c.encode(phaseFrames?.done, forKey: .phaseDone)
        try c.encode(phaseFrames?.total, forKey: .phaseTotal)
        try c.encode(lastPass?.pass, forKey: .pass)
        try c.encode(lastPass?.remainingDirtyFrames, forKey: .dirtyFrames)
        try c.encode(lastPass.map { Int($0.dirtyRateFramesPerSecond) }, forKey: .dirtyRate)
        try c.encode(lastPass?.throttlePercent, forKey: .throttle)
        try c.encode(lastPass?.predictedBlackoutMicroseconds, forKey: .predicted)
        try c.encode(targetMicroseconds, forKey: .target)
        try c.encode(thresholdFrames, forKey: .threshold)
        try c.encode(lastBlackout?.durationMicroseconds, forKey: .lastBlackout)
        try c.encode(
            passes.map {
                PassLine(
                    pass: $0.pass, dirtyFrames: $0.dirtyFrames, remainingDirtyFrames: $0.remainingDirtyFrames,
                    dirtyRate: Int($0.dirtyRateFramesPerSecond), predicted: $0.predictedBlackoutMicroseconds,
                    throttle: $0.throttlePercent)
            }, forKey: .passes)
        try c.encode(duplexedSince.map { Double(MonotonicClock.nanoseconds() &- $0) / 1e9 }, forKey: .lockstepSeconds)
    }
}
