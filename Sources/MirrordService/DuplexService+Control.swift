import Foundation
import MirrorCore
import MirrordConfig

/// The control socket's requests, answered from the service's state: `status`, and the actions
/// of fault tolerance in service (`inject-fault`, `replace-spare`, `reduplex`, `scrub`).
extension DuplexService {
    /// The reply to `request`, one JSON object (without its newline). Quick: it reads state and
    /// queues actions for the service's own loop.
    func controlReply(to request: ControlRequest) -> Data {
        switch request.verb {
        case .status:
            return encode(statusReport)
        case .injectFault:
            let fault = ModuleFault(request.kind ?? .lost, module: request.module ?? .active, frame: request.frame ?? 0)
            if let refusal = raise(fault) { return refuse(refusal) }
            return encode(Ack(action: "inject-fault", what: fault.description))
        case .replaceSpare:
            guard let machine = machineForControl as? any FaultTolerantHardware else {
                return refuse("this backend has no fault model")
            }
            guard !machine.hasSpare else { return refuse("a spare module is installed already") }
            replaceSpare()
            return encode(Ack(action: "replace-spare", what: "a replacement spare is being installed"))
        case .reduplex:
            let state = lifecycle.state
            let installed = (machineForControl as? any FaultTolerantHardware)?.hasSpare ?? true
            guard state == .simplex, installed else {
                return refuse(
                    installed
                        ? "the pair is \(state.rawValue), not simplex: nothing to re-duplex"
                        : "no spare module is installed: replace-spare first")
            }
            reduplex()
            return encode(Ack(action: "reduplex", what: "a duplex of the installed spare is requested"))
        case .scrub:
            guard lifecycle.state == .duplexed else {
                return refuse("the pair is \(lifecycle.state.rawValue), not duplexed: nothing to scrub")
            }
            scrubNow()
            return encode(Ack(action: "scrub", what: "the next scrub slice is requested"))
        }
    }

    /// An error reply: the request was understood and refused.
    private func refuse(_ why: String) -> Data {
        encode(Refusal(error: why))
    }

    private struct Refusal: Encodable {
        var ok = false
        var error: String
    }

    /// An action taken in.
    private struct Ack: Encodable {
        var ok = true
        var action: String
        var what: String
    }

    /// What `status` reports: where the pair stands, the engine's progress, the modules' health
    /// and the configuration in force.
    struct StatusReport: Encodable {
        var ok = true
        var version = MirrordVersion.string
        var state: String
        var status: String
        var progress: LiveProgress
        var spareInstalled: Bool
        var lifecycle: LifecycleRecord
        var configuration: [String: String]

        enum CodingKeys: String, CodingKey {
            case ok, version, state, status, progress, lifecycle, configuration
            case spareInstalled = "spare_installed"
        }
    }

    /// The status now.
    var statusReport: StatusReport {
        let config = runningConfiguration
        let keys = [
            "hardware.backend", "memory.size", "duplex.threshold_frames", "duplex.blackout_target",
            "duplex.convergence",
            "duplex.auto_reduplex", "workload.pattern", "workload.rate",
        ]
        let lifecycle = self.lifecycle
        var progress = self.progress
        if state != .duplexed { progress.duplexedSince = nil }  // lockstep ended with it
        return StatusReport(
            state: state.name.rawValue, status: status, progress: progress,
            spareInstalled: (machineForControl as? any FaultTolerantHardware)?.hasSpare ?? true, lifecycle: lifecycle,
            configuration: Dictionary(uniqueKeysWithValues: keys.map { ($0, config.value(forKey: $0)) }))
    }

    private func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)) ?? Data(#"{"ok":false,"error":"cannot encode the reply"}"#.utf8)
    }
}
