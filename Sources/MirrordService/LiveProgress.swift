import MirrorCore

/// The engine's progress as the last events left it, for the control socket's `status`: the
/// state, the current phase's frames, the last pass and the last blackout. The socket sends it as
/// MirrordControl's `ProgressReport` (`report(now:)`).
struct LiveProgress: Sendable {
    /// The engine's state.
    var engineState: DuplexState = .idle
    /// The last epoch committed on a spare on another host, and when (monotonic nanoseconds).
    var lastEpoch: EpochReport?
    var lastEpochAt: UInt64 = 0
    /// When the status line last followed the epochs.
    var lastEpochStatusAt: UInt64 = 0
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
        case .fullCopyCompleted, .throttleChanged, .passesEnded, .verifyCompleted, .firstEpochCommitted:
            break
        }
    }
}
