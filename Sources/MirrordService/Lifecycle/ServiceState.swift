import MirrorCore

/// Where the service stands: `starting → duplexing → duplexed → simplex → duplexing → …`, ending
/// in `stopping` (a graceful shutdown) or `failed` (nothing left to run on).
///
/// It is the one value the status line, `mirrorctl status`, the metrics and the journal's
/// state-change entries read, so that they cannot disagree. Each case carries the data that only
/// it has (why the pair runs simplex, what failed), so that no
/// combination the life cycle does not allow can be written down. Every change goes through
/// ``LifecycleMachine/transition(_:on:)``.
package indirect enum ServiceState: Sendable, Hashable {
    /// The machine is being started; no duplex has begun.
    case starting
    /// A duplex is bringing the spare into lockstep.
    case duplexing(Duplexing)
    /// Active and spare are in lockstep: either may fail and nothing is lost.
    case duplexed
    /// The spare is on another host and epochs keep it at most an epoch or two behind: the host
    /// may fail and the backup takes over from the last committed epoch (never lockstep: no store
    /// reaches both hosts at once).
    case replicating(Replicating)
    /// One module runs the machine; not fault tolerant until a spare is duplexed.
    case simplex(SimplexCause)
    /// A graceful shutdown was asked for in the state it carries; the engine is being stopped at
    /// its next safe point. Faults are still answered as that state would.
    case stopping(from: ServiceState)
    /// The service ended on a failure.
    case failed(Failure)

    /// The names of the states, as the status line, `mirrorctl status`, the metrics'
    /// `mirrord_state{state=…}` and the journal's `MIRRORD_STATE` write them.
    package enum Name: String, Sendable, Hashable, CaseIterable {
        case starting, duplexing, duplexed, replicating, simplex, stopping, failed
    }

    /// A duplex in progress.
    package struct Duplexing: Sendable, Hashable {
        /// Whether it is the service's first duplex (of the spare installed at start), rather
        /// than one of a replacement or suspect spare after simplex.
        package var first: Bool

        /// A duplex, the first or a later one.
        package init(first: Bool) {
            self.first = first
        }
    }

    /// Replication to a spare on another host.
    package struct Replicating: Sendable, Hashable {
        /// The spare's URI (no secrets in it).
        package var spare: String

        /// Replication to `spare`.
        package init(spare: String) {
            self.spare = spare
        }
    }

    /// Why the pair runs simplex.
    package enum SimplexCause: Sendable, Hashable {
        /// The spare on another host stopped answering, refused a write or failed a read-back:
        /// the primary runs on alone and tries again (`reason` says what happened).
        case spareHostLost(reason: String)
        /// The active module failed; the CPUs and DMA run on the former spare.
        case failedOver(ModuleFault)
        /// The spare failed (or was predicted to) and was removed; `duringDuplex` when it was
        /// being duplexed (that duplex was aborted).
        case spareFailed(ModuleFault, duringDuplex: Bool)
        /// The scrub found the modules different: the spare is suspect and lockstep is off.
        case spareSuspect(mismatches: Int)
        /// A duplex ended on a module failure no fault explained.
        case duplexAborted
        /// `mirrord takeover` started the machine from committed `epoch` of `source` (the export's
        /// image file or URI): there is no spare to duplex to.
        case tookOver(epoch: UInt64, source: String)
    }

    /// What ended the service on a failure.
    package enum Failure: Sendable, Hashable {
        /// The machine's threads could not be started (a resource the process lacks).
        case couldNotStart(String)
        /// A duplex failed for good (the verify found differences, the hardware failed).
        case duplexFailed(String)
        /// Nothing is left to run on: this was lost.
        case memoryLost(String)
        /// The lockstep scrub could not run: lockstep can no longer be vouched for.
        case scrubFailed(String)

        /// What failed, in words.
        package var reason: String {
            switch self {
            case .couldNotStart(let text), .duplexFailed(let text), .memoryLost(let text), .scrubFailed(let text): text
            }
        }
    }

    /// The state's name.
    package var name: Name {
        switch self {
        case .starting: .starting
        case .duplexing: .duplexing
        case .duplexed: .duplexed
        case .replicating: .replicating
        case .simplex: .simplex
        case .stopping: .stopping
        case .failed: .failed
        }
    }

    /// The state that answers events while stopping: the one the shutdown arrived in.
    package var running: ServiceState {
        if case .stopping(let from) = self { return from.running }
        return self
    }

    /// Whether a graceful shutdown was asked for.
    package var isStopping: Bool {
        if case .stopping = self { return true }
        return false
    }

    /// The module pair's state as the rules of fault tolerance (``FaultResponse``) and the
    /// `--json` summary's `lifecycle.state` see it: a service not yet duplexing counts as
    /// duplexing (the spare is not yet equal), a stopping one as the state it stops in.
    package var pairState: LifecycleState {
        switch running {
        case .starting, .duplexing: .duplexing
        case .duplexed: .duplexed
        // No local spare: a module fault is answered as in simplex (the spare host keeps the
        // last committed epoch, for a takeover).
        case .replicating, .simplex: .simplex
        case .failed: .failed
        case .stopping: .failed  // never reached: `running` unwraps every stopping
        }
    }
}
