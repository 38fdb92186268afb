import MirrorCore

/// What a transition asks the service to do: to the machine (fail over, remove the spare, drop
/// lockstep), to the engine (stop), to itself (a duplex, a replacement), and what to tell
/// operators (``TransitionReport``), in the order given.
package enum LifecycleEffect: Sendable, Hashable {
    /// Ask the running duplex to stop at its next safe point.
    case stopEngine
    /// Switch the CPUs and DMA to the spare (in lockstep, so nothing is lost), then report the
    /// outcome as ``LifecycleEvent/failedOver(_:microseconds:)`` or
    /// ``LifecycleEvent/failoverFailed(_:_:)``.
    case failOver(ModuleFault)
    /// Drop lockstep and remove the spare after `fault`.
    case removeSpare(ModuleFault)
    /// Switch lockstep and DMA dual-write off: the spare is suspect.
    case dropLockstep
    /// Start a duplex of the installed spare once the faults reported so far are answered.
    case reduplexWhenReady
    /// A drill's replacement spare is due after its delay, if `fault.replace_after` sets one.
    case expectReplacement
    /// Try the spare on another host again after a backoff (a new sync when it answers).
    case resyncLater
    /// Tell operators: the journal and the status line.
    case report(TransitionReport)
    /// The service ends on a failure: this says why.
    case fail(String)
}

/// What operators are told of a transition: a journal entry (with its `MESSAGE_ID` where one
/// exists) and, for most, the status line.
package enum TransitionReport: Sendable, Hashable {
    /// `mirrord takeover` runs the machine from committed `epoch` of `source`, simplex.
    case tookOver(epoch: UInt64, framesReplayed: Int, milliseconds: Double, source: String)
    /// A correctable error, counted: `count` within the window, against `limit`; `failing` when
    /// it makes the module count as failing.
    case correctable(ModuleFault, count: Int, limit: Int, failing: Bool)
    /// A failing module's fault that the pair's state makes moot.
    case faultNoted(ModuleFault)
    /// The failover is done after a blackout of `microseconds`.
    case failedOver(ModuleFault, microseconds: UInt64)
    /// The spare was removed after `fault`, which arrived in `state`.
    case spareRemoved(ModuleFault, duringDuplex: Bool, state: LifecycleState)
    /// The scrub found the modules different.
    case spareSuspect(DuplexSummary.Verify, autoReduplex: Bool)
    /// A replacement spare was installed.
    case spareInstalled(autoReduplex: Bool)
    /// A duplex ended: duplexed, or failed for good.
    case duplexFinished(DuplexSummary, reduplexed: Bool)
    /// Nothing is left to run on.
    case memoryLost(ModuleFault, what: String)
    /// The scrub could not run.
    case scrubFailed(String)
    /// The operator's re-duplex cannot be carried out: this says why.
    case reduplexRefused(String)
    /// The spare on another host was lost (`reason`): the pair runs simplex and will try again;
    /// `unreachable` when it did not answer (else it refused or failed a write or a read-back).
    case spareHostLost(reason: String, duringSync: Bool, unreachable: Bool = true)
}
