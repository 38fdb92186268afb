/// Why the harvest-and-copy passes ended and the blackout began.
public enum PassEndReason: String, Sendable, Codable, CaseIterable {
    /// The predicted blackout of the dirty frames fell to `duplex.blackout_target` or below.
    case target
    /// The dirty frames fell to `duplex.threshold_frames` or below.
    case threshold
    /// `duplex.max_passes` passes ran without reaching the target or the threshold.
    case maxPasses = "max_passes"
    /// A pass did not shrink the dirty set by `duplex.min_progress` (and, with convergence
    /// control, the throttle was already at its maximum): more passes would not help.
    case stalled
    /// `duplex.max_duration` passed; the blackout was taken at the next pass, at the maximum
    /// throttle.
    case deadline

    /// Whether a pass that reaches this end takes its blackout whatever the look at the dirty set
    /// finds: every end but the threshold, which is counted again at the stop and may be put off.
    package var takesBlackoutWhateverFound: Bool { self != .target && self != .threshold }
}
