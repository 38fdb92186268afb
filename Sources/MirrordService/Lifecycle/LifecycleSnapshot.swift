import MirrorCore

/// The service's whole life cycle as one value, kept behind one lock by ``DuplexService`` and
/// changed only by ``LifecycleMachine/transition(_:on:)``: where it stands, what happened so far,
/// the last duplex's summary, each module's correctable errors, and what `--once` still waits for.
package struct LifecycleSnapshot: Sendable {
    /// Where the service stands.
    package var state: ServiceState = .starting
    /// What happened to the module pair so far (its `state` is filled in by ``record``).
    package var history = LifecycleRecord()
    /// The summary of the last duplex, once one has ended.
    package var summary: DuplexSummary?
    /// A fault on the active module that waits for a duplex to make a spare equal (a predicted
    /// failure): the failover follows the next duplex that ends duplexed, this one or, if the
    /// spare failed meanwhile, its replacement's.
    package var pendingFailover: ModuleFault?
    /// Each module's correctable errors within the window.
    package var correctable: CorrectableErrorLedger
    /// Whether the `[fault]` drill's faults have been raised (or its moment has passed).
    package var drillRaised: Bool
    /// Whether a drill's replacement spare is still to be installed and duplexed.
    package var replacementPending = false
    /// What was lost, once the service failed on a loss (the worst one reported).
    package var loss: MemoryLoss?

    /// A service about to start, with `tolerance` in force and a drill armed or not.
    package init(tolerance: FaultTolerancePolicy, drillArmed: Bool) {
        correctable = CorrectableErrorLedger(
            limit: tolerance.correctableLimit, window: tolerance.correctableWindowNanoseconds)
        drillRaised = !drillArmed
    }

    /// What happened to the module pair, with the pair's state now.
    package var record: LifecycleRecord {
        var record = history
        record.state = state.pairState
        return record
    }
}
