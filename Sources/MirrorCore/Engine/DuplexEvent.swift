/// A progress event of a running duplex, delivered on the engine's thread as it happens.
///
/// Observers turn these into progress lines, journal entries, `STATUS=` and watchdog pings; they
/// must return quickly, since the engine waits for them.
public enum DuplexEvent: Sendable {
    /// The engine moved from one state to the next.
    case stateChanged(from: DuplexState, to: DuplexState)
    /// A chunk of a long phase (full copy, verify) finished: a sign of life between the other events.
    case progress(DuplexState, completedFrames: Int, totalFrames: Int)
    /// The full copy finished.
    case fullCopyCompleted(DuplexSummary.FullCopy)
    /// A pass finished; `thresholdFrames` and `targetMicroseconds` (0: off) are the limits in force.
    case passCompleted(DuplexSummary.Pass, thresholdFrames: Int, targetMicroseconds: UInt64)
    /// The throttle of the CPUs changed (percent per CPU); `engaged` is true the first time a
    /// duplex slows a CPU, and `reason` says why.
    case throttleChanged(cpuPercent: [Double], engaged: Bool, reason: String)
    /// The passes ended for `reason` with this many frames still dirty, and the blackout the
    /// engine predicts for them (microseconds), when it could.
    case passesEnded(PassEndReason, dirtyFrames: Int, predictedBlackoutMicroseconds: UInt64?)
    /// The blackout ended; the CPUs run again.
    case blackoutCompleted(DuplexSummary.Blackout)
    /// The verify finished.
    case verifyCompleted(DuplexSummary.Verify)
    /// With a spare on another host: the first epoch committed there, in place of the verify.
    case firstEpochCommitted(EpochReport)
    /// The duplex ended, duplexed or failed.
    case finished(DuplexSummary)
}
