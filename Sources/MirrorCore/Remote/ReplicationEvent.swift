/// A progress event of epoch replication. Delivered on the thread where it happens (a commit on
/// the shipping thread, a throttle on the replicator's), so observers must be thread-safe and
/// return quickly.
public enum ReplicationEvent: Sendable {
    /// An epoch committed on the spare.
    case epochCommitted(EpochReport)
    /// The CPUs were slowed (percent of their time; 100: stopped until the link catches up) or
    /// let go (0), and why.
    case throttleChanged(percent: Double, reason: String)
    /// The writers' dirty limit changed, and why: it follows what one pause may copy within the
    /// blackout target (a writer that finds that many frames dirty waits for the next pause).
    case dirtyLimitChanged(frames: Int, reason: String)
    /// A clean stop began: the epochs being shipped commit while the CPUs run on (until the
    /// writers reach their dirty limit).
    case finishing
    /// A clean stop stopped every CPU for its last epoch, after they ran on this long while the
    /// epochs in flight committed: the machine runs nowhere from here until it runs again from
    /// that epoch (a switch-over's outage begins).
    case lastPause(runningMicroseconds: UInt64)
}
