import Logging
import MirrorCore
import MirrorEmulation
import Synchronization

/// The operator's actions and the answers to module faults: raised through the hardware, decided
/// by ``FaultResponse``, carried out here between duplexes.
extension DuplexService {
    // MARK: - The operator's actions

    /// Raises `fault` on the machine at once, as its hardware would (a drill): during a duplex too,
    /// which it then aborts if the fault is fatal to a module.
    package func inject(_ fault: ModuleFault) { _ = raise(fault) }

    /// Raises `fault`; returns why it could not be, logged too.
    func raise(_ fault: ModuleFault) -> String? {
        let state = record.withLock { $0.state.rawValue }
        let refusal: String
        if let machine = machine as? any FaultTolerantHardware {
            do {
                try machine.inject(fault)
                return nil
            } catch {
                refusal = error.message
            }
        } else {
            refusal = "backend \(machine.backendName) has no fault model"
        }
        logger.warning("cannot inject \(fault): \(refusal)", metadata: ["mirrord_state": "\(state)"])
        return refusal
    }

    /// Installs a replacement spare (after a module was removed); with `duplex.auto_reduplex` a
    /// duplex of it follows.
    package func replaceSpare() { eventSink.yield(.replaceSpare) }

    /// Starts a duplex of the installed spare while simplex.
    package func reduplex() { eventSink.yield(.reduplex) }

    /// Compares the next scrub slice now (while duplexed) instead of at the next tick.
    package func scrubNow() { eventSink.yield(.tick) }

    /// The doorbell: a module fault aborts a running duplex at once; every fault is then handled
    /// on the service's own time.
    func faultReported(_ fault: ModuleFault) {
        let duplexing = record.withLock { $0.state == .duplexing }
        if duplexing && fault.isFatalToModule { engine.stopToken.abort(because: fault) }
        eventSink.yield(.faultsReported)
    }

    // MARK: - Faults

    /// Takes the faults the hardware reported and answers each; returns how serving ends, if a
    /// fault ends it.
    func handleFaults() -> End? {
        guard let machine = machine as? any FaultTolerantHardware else { return nil }
        for fault in machine.takeFaults() {
            record.withLock { $0.note(fault) }
            var failing = fault.isFatalToModule
            if fault.kind == .correctable {
                let now = MonotonicClock.nanoseconds()
                let policy = configuration.current.faultTolerance
                let (predicted, count) = correctable.withLock { ledger in
                    ledger.apply(policy)
                    return (ledger.record(fault.module, now: now), ledger.count(fault.module, now: now))
                }
                failing = predicted
                reporter.correctable(
                    fault, count: count, limit: policy.correctableLimit,
                    failing: predicted, state: record.withLock { $0.state })
            }
            if let end = respond(to: fault, failing: failing) { return end }
        }
        return nil
    }

    /// Carries out what ``FaultResponse`` says of `fault`.
    func respond(to fault: ModuleFault, failing: Bool) -> End? {
        guard let machine = machine as? any FaultTolerantHardware else { return nil }
        let state = record.withLock { $0.state }
        switch FaultResponse.decide(fault, failing: failing, state: state, hasSpare: machine.hasSpare) {
        case .noted:
            if failing { reporter.faultNoted(fault, state: state) }
        case .failOverWhenDuplexed:
            pendingFailover.withLock { $0 = $0 ?? fault }
        case .abortDuplex:
            // Faults are answered between duplexes: the doorbell has already ended the duplex.
            removeSpare(after: fault, duringDuplex: true)
        case .removeSpare:
            removeSpare(after: fault, duringDuplex: false)
        case .failOver:
            do {
                let nanoseconds = try machine.failOver()
                let micros = nanoseconds / 1_000
                correctable.withLock { $0.failedOver() }
                // The journal and the status first: whoever sees the new state sees them too.
                reporter.failedOver(
                    fault, blackoutMicroseconds: micros,
                    targetMicroseconds: configuration.current.policy.blackoutTargetNanoseconds / 1_000)
                record.withLock {
                    $0.state = .simplex
                    $0.failovers.append(.init(fault: fault.description, blackoutMicroseconds: micros))
                }
                expectReplacement()
            } catch {
                return lose(fault, what: "failover to the spare failed (\(error)) after \(fault)")
            }
        case .fatal(let what):
            return lose(fault, what: what)
        }
        return nil
    }

    /// Removes the spare after `fault` and goes simplex.
    func removeSpare(after fault: ModuleFault, duringDuplex: Bool) {
        (machine as? any FaultTolerantHardware)?.removeSpare()
        reporter.spareRemoved(fault, duringDuplex: duringDuplex, state: record.withLock { $0.state })
        record.withLock {
            $0.state = .simplex
            $0.sparesRemoved += 1
        }
        expectReplacement()
    }

    /// After a module is removed: a drill's replacement arrives after `fault.replace_after`
    /// (`--once` waits for its duplex).
    func expectReplacement() {
        let delay = configuration.current.faultDrill.replaceAfterNanoseconds
        guard delay > 0 else { return }
        replacementPending.store(true, ordering: .releasing)
        let sink = eventSink
        Task {
            try? await Task.sleep(for: .nanoseconds(Int64(delay)))
            sink.yield(.replaceSpare)
        }
    }

    /// Nothing is left to run on.
    func lose(_ fault: ModuleFault, what: String) -> End {
        reporter.memoryLost(fault, what: what)
        record.withLock {
            $0.state = .failed
            $0.lost = what
        }
        return .failed(what)
    }
}
