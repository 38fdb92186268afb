import MirrorCore

/// What wakes the service between duplexes: the scrub's tick, faults the hardware reported, and
/// the operator's (or a drill's) actions.
enum ServiceEvent: Sendable {
    /// Time for the next scrub slice and watchdog ping.
    case tick
    /// The hardware reported faults (take them with ``FaultTolerantHardware/takeFaults()``).
    case faultsReported
    /// Raise this fault (an operator's or a drill's).
    case inject(ModuleFault)
    /// A replacement spare has arrived: install it.
    case replaceSpare
    /// Start a duplex of the installed spare.
    case reduplex
    /// A drill's faults have all been raised (they precede this event).
    case drillRaised
    /// Epoch replication to the spare on another host ended.
    case replicationEnded(ReplicationEnd)
}
