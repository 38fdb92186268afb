import Logging
import MirrorCore

/// The operator's actions and the module faults: raised through the hardware, answered by the
/// life cycle (``LifecycleMachine``, after ``FaultResponse``'s rules) between duplexes.
extension DuplexService {
    // MARK: - The operator's actions

    /// Raises `fault` on the machine at once, as its hardware would (a drill): during a duplex too,
    /// which it then aborts if the fault is fatal to a module.
    package func inject(_ fault: ModuleFault) { _ = raise(fault) }

    /// Raises `fault`; returns why it could not be, logged too.
    func raise(_ fault: ModuleFault) -> String? {
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
        logger.warning("cannot inject \(fault): \(refusal)", metadata: ["mirrord_state": "\(state.name)"])
        return refusal
    }

    /// Installs a replacement spare (after a module was removed); with `duplex.auto_reduplex` a
    /// duplex of it follows.
    package func replaceSpare() { eventSink.yield(.replaceSpare) }

    /// Starts a duplex of the installed spare while simplex.
    package func reduplex() { eventSink.yield(.reduplex) }

    /// Compares the next scrub slice now (while duplexed) instead of at the next tick.
    package func scrubNow() { eventSink.yield(.tick) }

    // MARK: - Faults

    /// The doorbell: a module fault aborts a running duplex at once; every fault is then handled
    /// on the service's own time.
    func faultReported(_ fault: ModuleFault) {
        if case .duplexing = state.running, fault.isFatalToModule { engine.stopToken.abort(because: fault) }
        eventSink.yield(.faultsReported)
    }

    /// Takes the faults the hardware reported and answers each, every one of the batch even after
    /// one ended the service (a later one may lose more: the final report names the worst loss);
    /// returns how serving ends, if a fault ends it: the last end.
    func handleFaults() -> End? {
        guard let machine = machine as? any FaultTolerantHardware else { return nil }
        let tolerance = configuration.current.faultTolerance
        var end: End?
        for fault in machine.takeFaults() {
            let event = LifecycleEvent.fault(
                fault, hasSpare: machine.hasSpare, now: clock.nanoseconds(), tolerance: tolerance)
            if case .end(let ended) = apply(event) { end = ended }
        }
        return end
    }
}
