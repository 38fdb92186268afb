import MirrorCore

/// What happens to the service, as ``LifecycleMachine/transition(_:on:)`` takes it in: the
/// machine's start, the duplexes' ends, module faults, the scrub's findings, the operator's and a
/// drill's actions, and a graceful shutdown. Each carries what the transition needs to decide,
/// read by the caller beforehand (the time, whether a spare is installed, the policy in force),
/// so that the transition itself reads no clock and no machine.
package enum LifecycleEvent: Sendable, Hashable {
    /// The machine's threads could not be started, or a takeover's start did not settle once its
    /// CPUs ran (its replayed image not made durable): this says why.
    case startFailed(String)
    /// `mirrord takeover`: the machine runs from the export's image of committed `epoch`
    /// (`source`: the image file or the export's URI), `framesReplayed` frames replayed from the
    /// journal, the CPUs running `milliseconds` after the takeover began (its command, or with
    /// `--on-request` its request). No spare: simplex.
    case tookOver(epoch: UInt64, framesReplayed: Int, milliseconds: Double, source: String)
    /// SIGTERM or SIGINT: stop at the next safe point.
    case shutdownRequested
    /// A duplex begins (the first one, or of a replacement or suspect spare).
    case duplexStarted
    /// The running duplex ended with this summary (any faults it ended on were answered first).
    case duplexEnded(DuplexSummary)
    /// The hardware reported `fault` at `now` (monotonic nanoseconds); `hasSpare` says whether a
    /// spare module is installed, `tolerance` is the policy in force.
    case fault(ModuleFault, hasSpare: Bool, now: UInt64, tolerance: FaultTolerancePolicy)
    /// The failover asked for by ``LifecycleEffect/failOver(_:)`` is done: the CPUs and DMA run on
    /// the former spare after a blackout of `microseconds`.
    case failedOver(ModuleFault, microseconds: UInt64)
    /// The failover asked for could not be carried out: this says why.
    case failoverFailed(ModuleFault, String)
    /// A scrub slice found frames that differ between active and spare.
    case scrubDiffered(DuplexSummary.Verify, autoReduplex: Bool)
    /// A scrub slice could not run: this says why.
    case scrubFailed(String)
    /// A replacement spare module was installed.
    case spareInstalled(autoReduplex: Bool)
    /// The operator asked for a duplex of the installed spare; `hasSpare` whether one is installed.
    case reduplexRequested(hasSpare: Bool)
    /// A drill's replacement spare will arrive after its delay (`--once` waits for its duplex).
    case replacementScheduled
    /// The `[fault]` drill's faults have been raised, or its moment passed without coming.
    case drillRaised
    /// Epoch replication to the spare on another host ended (stopped, or the spare failed).
    case replicationEnded(ReplicationEnd)
}
