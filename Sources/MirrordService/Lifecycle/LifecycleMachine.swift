import MirrorCore

/// The service's life cycle as one function: (snapshot, event) → (snapshot, effects).
///
/// It reads no clock, no machine and no configuration beyond what the event carries, so a unit
/// test walks every (state, event) pair without threads. The rules that map a module fault to an
/// action are ``FaultResponse``'s; this adds what the service does around them. A graceful
/// shutdown wraps the state it arrived in (``ServiceState/stopping(from:)``); events are then
/// answered as in that state, and the service stays stopping.
package enum LifecycleMachine {
    /// The snapshot after `event`, and what the service must do, in order.
    package static func transition(
        _ snapshot: LifecycleSnapshot, on event: LifecycleEvent
    ) -> (LifecycleSnapshot, [LifecycleEffect]) {
        var next = snapshot
        if case .stopping(let from) = snapshot.state, event != .shutdownRequested {
            next.state = from
            let effects = step(&next, event)
            if case .failed = next.state {} else { next.state = .stopping(from: next.state) }
            return (next, effects)
        }
        let effects = step(&next, event)
        return (next, effects)
    }

    /// Applies `event` to a state that is not stopping (or to the state a shutdown arrived in).
    private static func step(_ s: inout LifecycleSnapshot, _ event: LifecycleEvent) -> [LifecycleEffect] {
        switch event {
        case .startFailed(let why):
            // While starting, or once a takeover's CPUs run and before anything else (its image
            // could not be made durable).
            switch s.state {
            case .starting, .simplex(.tookOver): break
            default: return []
            }
            s.state = .failed(.couldNotStart(why))
            return []

        case .tookOver(let epoch, let frames, let milliseconds, let source):
            guard s.state == .starting else { return [] }
            s.state = .simplex(.tookOver(epoch: epoch, source: source))
            return [
                .report(.tookOver(epoch: epoch, framesReplayed: frames, milliseconds: milliseconds, source: source))
            ]

        case .shutdownRequested:
            switch s.state {
            case .stopping, .failed: return []
            default:
                s.state = .stopping(from: s.state)
                return [.stopEngine]
            }

        case .duplexStarted:
            switch s.state {
            case .starting, .simplex:
                s.history.duplexes += 1
                s.state = .duplexing(.init(first: s.history.duplexes == 1))
                return []
            default: return []
            }

        case .duplexEnded(let summary):
            guard case .duplexing(let duplex) = s.state else {
                // The faults it ended on were answered first and settled the state (simplex, failed).
                s.summary = summary
                return []
            }
            s.summary = summary
            if summary.outcome.isReplicating {
                s.state = .replicating(.init(spare: summary.spareName ?? "the spare host"))
                s.history.duplexed += 1
                return [.report(.duplexFinished(summary, reduplexed: !duplex.first))]
            }
            if summary.isDuplexed {
                s.state = .duplexed
                s.history.duplexed += 1
                if !duplex.first { s.replacementPending = false }
                var effects: [LifecycleEffect] = [.report(.duplexFinished(summary, reduplexed: !duplex.first))]
                if let fault = s.pendingFailover {
                    s.pendingFailover = nil
                    effects.append(.failOver(fault))
                }
                return effects
            }
            switch summary.outcome {
            case .failed(.stopped):
                // Only a graceful shutdown stops a duplex: the caller wraps the state again.
                return []
            case .failed(.moduleFailed):
                s.state = .simplex(.duplexAborted)
                return [.report(.duplexFinished(summary, reduplexed: false))]
            case .failed(.spareUnreachable), .failed(.spareFailed):
                // The spare host answered at start (or before) and is away now, or failed this
                // sync (a standby not answering yet, a write refused): simplex, and another try
                // later. The machine runs on; only a refusal (another host owns the export) ends it.
                s.state = .simplex(.spareHostLost(reason: summary.message))
                let unreachable = summary.outcome == .failed(.spareUnreachable)
                return [
                    .report(.spareHostLost(reason: summary.message, duringSync: true, unreachable: unreachable)),
                    .resyncLater,
                ]
            default:
                s.state = .failed(.duplexFailed(summary.message))
                return [.report(.duplexFinished(summary, reduplexed: false))]
            }

        case .fault(let fault, let hasSpare, let now, let tolerance):
            return answer(fault, hasSpare: hasSpare, now: now, tolerance: tolerance, &s)

        case .failedOver(let fault, let microseconds):
            guard s.state == .duplexed else { return [] }
            s.correctable.failedOver()
            s.state = .simplex(.failedOver(fault))
            s.history.failovers.append(.init(fault: fault.description, blackoutMicroseconds: microseconds))
            return [.report(.failedOver(fault, microseconds: microseconds)), .expectReplacement]

        case .failoverFailed(let fault, let why):
            let loss = MemoryLoss(fault, in: s.state.pairState, whole: true)
            return lose(loss, what: "failover to the spare failed (\(why)) after \(fault)", &s)

        case .scrubDiffered(let result, let autoReduplex):
            guard s.state == .duplexed else { return [] }
            s.state = .simplex(.spareSuspect(mismatches: result.mismatches))
            var effects: [LifecycleEffect] = [
                .dropLockstep, .report(.spareSuspect(result, autoReduplex: autoReduplex)),
            ]
            if autoReduplex { effects.append(.reduplexWhenReady) }
            return effects

        case .scrubFailed(let why):
            guard s.state == .duplexed else { return [] }
            let text = "lockstep cannot be checked: \(why)"
            s.state = .failed(.scrubFailed(text))
            return [.report(.scrubFailed(text)), .fail(text)]

        case .spareInstalled(let autoReduplex):
            s.correctable.spareReplaced()
            s.history.sparesInstalled += 1
            if !autoReduplex { s.replacementPending = false }
            var effects: [LifecycleEffect] = [.report(.spareInstalled(autoReduplex: autoReduplex))]
            if autoReduplex { effects.append(.reduplexWhenReady) }
            return effects

        case .reduplexRequested(let hasSpare):
            guard case .simplex = s.state, hasSpare else {
                let why =
                    hasSpare ? "the pair is \(s.state.name.rawValue), not simplex" : "no spare module is installed"
                return [.report(.reduplexRefused(why))]
            }
            return [.reduplexWhenReady]

        case .replacementScheduled:
            s.replacementPending = true
            return []

        case .drillRaised:
            s.drillRaised = true
            return []

        case .replicationEnded(let end):
            guard case .replicating = s.state, end.reason != .stopped else { return [] }
            if end.spareError?.kind == .refused {
                // Another host owns the export now (a takeover), or it cannot be used: trying
                // again changes nothing, and running on beside a taken-over export is split brain.
                let text = "the spare host refused replication: \(end.message)"
                s.state = .failed(.duplexFailed(text))
                return [
                    .report(.spareHostLost(reason: end.message, duringSync: false, unreachable: false)), .fail(text),
                ]
            }
            s.state = .simplex(.spareHostLost(reason: end.message))
            let unreachable = end.spareError?.kind == .unreachable
            return [
                .report(.spareHostLost(reason: end.message, duringSync: false, unreachable: unreachable)), .resyncLater,
            ]
        }
    }

    /// Answers one module fault: counts a correctable one, then does what ``FaultResponse`` says.
    private static func answer(
        _ fault: ModuleFault, hasSpare: Bool, now: UInt64, tolerance: FaultTolerancePolicy, _ s: inout LifecycleSnapshot
    ) -> [LifecycleEffect] {
        s.history.note(fault)
        if case .failed(.memoryLost) = s.state, let lost = s.loss, fault.isFatalToModule {
            // Lost already: a worse loss (the whole module after a frame) is reported in its place,
            // judged in the state the first one struck in; a lesser one is only noted.
            let worse = MemoryLoss(fault, in: lost.state)
            if lost.isExceeded(by: worse),
                case .fatal(let what) = FaultResponse.decide(
                    fault, failing: true, state: lost.state, hasSpare: hasSpare)
            {
                return lose(worse, what: what, &s)
            }
        }
        if case .replicating = s.state, fault.module == .spare {
            // The spare is on another host: the local spare module is not in use, and its fault
            // changes nothing (removing it would leave the pair simplex while epochs run on).
            return [.report(.faultNoted(fault))]
        }
        var effects: [LifecycleEffect] = []
        var failing = fault.isFatalToModule
        if fault.kind == .correctable {
            s.correctable.apply(tolerance)
            failing = s.correctable.record(fault.module, now: now)
            let count = s.correctable.count(fault.module, now: now)
            effects.append(
                .report(.correctable(fault, count: count, limit: tolerance.correctableLimit, failing: failing)))
        }
        switch FaultResponse.decide(fault, failing: failing, state: s.state.pairState, hasSpare: hasSpare) {
        case .noted:
            if failing { effects.append(.report(.faultNoted(fault))) }
        case .failOverWhenDuplexed:
            s.pendingFailover = s.pendingFailover ?? fault
        case .abortDuplex:
            effects += removeSpare(after: fault, duringDuplex: true, &s)
        case .removeSpare:
            effects += removeSpare(after: fault, duringDuplex: false, &s)
        case .failOver:
            effects.append(.failOver(fault))
        case .fatal(let what):
            effects += lose(MemoryLoss(fault, in: s.state.pairState), what: what, &s)
        }
        return effects
    }

    /// The spare goes after `fault`; the pair runs simplex.
    private static func removeSpare(
        after fault: ModuleFault, duringDuplex: Bool, _ s: inout LifecycleSnapshot
    ) -> [LifecycleEffect] {
        let state = s.state.pairState
        s.state = .simplex(.spareFailed(fault, duringDuplex: duringDuplex))
        s.history.sparesRemoved += 1
        return [
            .removeSpare(fault), .report(.spareRemoved(fault, duringDuplex: duringDuplex, state: state)),
            .expectReplacement,
        ]
    }

    /// Nothing is left to run on: `loss` is what went, `what` says it.
    private static func lose(_ loss: MemoryLoss, what: String, _ s: inout LifecycleSnapshot) -> [LifecycleEffect] {
        s.state = .failed(.memoryLost(what))
        s.history.lost = what
        s.loss = loss
        return [.report(.memoryLost(loss.fault, what: what)), .fail(what)]
    }
}
