/// Why the harvest-and-copy passes ended and the blackout began.
public enum PassEndReason: String, Sendable, Codable {
    /// The dirty frames fell to `duplex.threshold_frames` or below: the normal end.
    case threshold
    /// `duplex.max_passes` passes ran without reaching the threshold.
    case maxPasses = "max_passes"
    /// A pass did not shrink the dirty set by `duplex.min_progress`: the workload dirties frames
    /// about as fast as they are copied, and more passes would not help.
    case stalled
}
