/// Where a fault-tolerant memory pair stands: `duplexing → duplexed → simplex → duplexing → …`,
/// or `failed` when nothing is left to run on.
public enum LifecycleState: String, Sendable, Hashable, CaseIterable {
    /// A duplex is bringing the spare into lockstep.
    case duplexing
    /// Active and spare are in lockstep: either may fail and nothing is lost.
    case duplexed
    /// One module runs the machine; not fault tolerant until a spare is duplexed.
    case simplex
    /// The machine's memory is lost, or a duplex failed for good.
    case failed
}
