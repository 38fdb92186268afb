/// The engine's progress as `status` reports it in `progress`: its state, the current phase's
/// frames, the last pass, the last blackout and the time in lockstep.
///
/// Every key is written, a value the engine does not have yet as `null`, so that a client can
/// rely on the keys docs/control.md lists.
package struct ProgressReport: Sendable, Hashable, Codable {
    /// The engine's state.
    package var engineState: EngineState
    /// Frames done of a full copy or verify in progress.
    package var phaseFramesDone: Int?
    /// Frames in all of a full copy or verify in progress.
    package var phaseFramesTotal: Int?
    /// The last pass's number.
    package var pass: Int?
    /// Frames dirty when the last pass ended.
    package var dirtyFrames: Int?
    /// Frames dirtied per second during the last pass.
    package var dirtyRate: Int?
    /// The CPUs' throttle during the last pass, percent.
    package var throttlePercent: Double?
    /// The blackout predicted after the last pass, microseconds.
    package var predictedBlackoutMicroseconds: UInt64?
    /// The blackout target in force at the last pass, microseconds (0: off).
    package var targetMicroseconds: UInt64
    /// The dirty-frame threshold in force at the last pass.
    package var thresholdFrames: Int
    /// The last blackout, microseconds.
    package var lastBlackoutMicroseconds: UInt64?
    /// Seconds in lockstep, while duplexed.
    package var lockstepSeconds: Double?
    /// Every pass of the running (or last) duplex, the last one last.
    package var passes: [PassReport]

    /// A report of every value; the ones a client need not know default to absent.
    package init(
        engineState: EngineState, phaseFramesDone: Int? = nil, phaseFramesTotal: Int? = nil, pass: Int? = nil,
        dirtyFrames: Int? = nil, dirtyRate: Int? = nil, throttlePercent: Double? = nil,
        predictedBlackoutMicroseconds: UInt64? = nil, targetMicroseconds: UInt64 = 0, thresholdFrames: Int = 0,
        lastBlackoutMicroseconds: UInt64? = nil, lockstepSeconds: Double? = nil, passes: [PassReport] = []
    ) {
        self.engineState = engineState
        self.phaseFramesDone = phaseFramesDone
        self.phaseFramesTotal = phaseFramesTotal
        self.pass = pass
        self.dirtyFrames = dirtyFrames
        self.dirtyRate = dirtyRate
        self.throttlePercent = throttlePercent
        self.predictedBlackoutMicroseconds = predictedBlackoutMicroseconds
        self.targetMicroseconds = targetMicroseconds
        self.thresholdFrames = thresholdFrames
        self.lastBlackoutMicroseconds = lastBlackoutMicroseconds
        self.lockstepSeconds = lockstepSeconds
        self.passes = passes
    }

    /// The wire's names (docs/control.md).
    enum CodingKeys: String, CodingKey {
        case engineState = "engine_state"
        case phaseFramesDone = "phase_frames_done"
        case phaseFramesTotal = "phase_frames_total"
        case pass
        case dirtyFrames = "dirty_frames"
        case dirtyRate = "dirty_rate_fps"
        case throttlePercent = "throttle_percent"
        case predictedBlackoutMicroseconds = "predicted_blackout_us"
        case targetMicroseconds = "target_us"
        case thresholdFrames = "threshold_frames"
        case lastBlackoutMicroseconds = "last_blackout_us"
        case lockstepSeconds = "lockstep_s"
        case passes
    }

    /// Encodes every key, a missing value as `null` (decoding is the synthesized one).
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: CodingKeys.self)
        try fields.encode(engineState, forKey: .engineState)
        try fields.encode(phaseFramesDone, forKey: .phaseFramesDone)
        try fields.encode(phaseFramesTotal, forKey: .phaseFramesTotal)
        try fields.encode(pass, forKey: .pass)
        try fields.encode(dirtyFrames, forKey: .dirtyFrames)
        try fields.encode(dirtyRate, forKey: .dirtyRate)
        try fields.encode(throttlePercent, forKey: .throttlePercent)
        try fields.encode(predictedBlackoutMicroseconds, forKey: .predictedBlackoutMicroseconds)
        try fields.encode(targetMicroseconds, forKey: .targetMicroseconds)
        try fields.encode(thresholdFrames, forKey: .thresholdFrames)
        try fields.encode(lastBlackoutMicroseconds, forKey: .lastBlackoutMicroseconds)
        try fields.encode(lockstepSeconds, forKey: .lockstepSeconds)
        try fields.encode(passes, forKey: .passes)
    }
}
