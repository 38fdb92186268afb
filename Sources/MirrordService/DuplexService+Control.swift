import MirrorCore
import MirrordConfig
import MirrordControl

/// The control socket's requests, answered from the service's state: `status` (and `watch`), and the actions
/// of fault tolerance in service (`inject-fault`, `replace-spare`, `reduplex`, `scrub`).
extension DuplexService {
    /// The reply to `request`, which the server encodes on one line. Quick: it reads state and
    /// queues actions for the service's own loop.
    func controlReply(to request: ControlRequest) -> ControlReply {
        switch request {
        case .status, .watch:
            return .status(statusReport)
        case .injectFault(let injection):
            let fault = ModuleFault(injection)
            if let refusal = raise(fault) { return refuse(refusal) }
            return acknowledge(.injectFault, fault.description)
        case .replaceSpare:
            guard let machine = machineForControl as? any FaultTolerantHardware else {
                return refuse("this backend has no fault model")
            }
            guard !machine.hasSpare else { return refuse("a spare module is installed already") }
            replaceSpare()
            return acknowledge(.replaceSpare, "a replacement spare is being installed")
        case .reduplex:
            let state = lifecycle.state
            let installed = hasSpareToDuplex
            guard state == .simplex, installed else {
                return refuse(
                    installed
                        ? "the pair is \(state.rawValue), not simplex: nothing to re-duplex"
                        : "no spare module is installed: replace-spare first")
            }
            reduplex()
            return acknowledge(.reduplex, "a duplex of the installed spare is requested")
        case .scrub:
            guard lifecycle.state == .duplexed else {
                return refuse("the pair is \(lifecycle.state.rawValue), not duplexed: nothing to scrub")
            }
            scrubNow()
            return acknowledge(.scrub, "the next scrub slice is requested")
        case .takeOver:
            return refuse("the machine runs here already (\(state.name.rawValue)): nothing to take over")
        }
    }

    /// An error reply: the request was understood and refused.
    private func refuse(_ why: String) -> ControlReply {
        .refused(ControlRefusal(error: why))
    }

    /// An action taken in.
    private func acknowledge(_ action: ControlVerb, _ what: String) -> ControlReply {
        .acknowledged(ControlAcknowledgement(action: action, what: what))
    }

    /// The configuration keys `status` reports, as the file writes them.
    static let statusConfigurationKeys = [
        "hardware.backend", "memory.size", "duplex.threshold_frames", "duplex.blackout_target",
        "duplex.convergence", "duplex.auto_reduplex", "workload.pattern", "workload.rate",
    ]

    /// The status now: where the pair stands, the engine's progress, the modules' history and
    /// the configuration in force.
    var statusReport: StatusReply {
        let config = runningConfiguration
        let lifecycle = self.lifecycle
        var progress = self.progress
        let state = self.state
        if state != .duplexed { progress.duplexedSince = nil }  // lockstep ended with it
        return StatusReply(
            state: ServiceStateName(state.name), status: status,
            spareInstalled: (machineForControl as? any FaultTolerantHardware)?.hasSpare ?? true,
            progress: progress.report(), lifecycle: lifecycle.report,
            configuration: Dictionary(
                uniqueKeysWithValues: Self.statusConfigurationKeys.map { ($0, config.value(forKey: $0)) }))
    }
}
