import MirrorCore
import MirrordControl

extension LifecycleRecord {
    /// The record as `status` reports it in `lifecycle`: the same keys as the `--json` summary's.
    var report: LifecycleReport {
        LifecycleReport(
            state: PairState(state), faults: faults,
            failovers: failovers.map {
                FailoverReport(fault: $0.fault, blackoutMicroseconds: $0.blackoutMicroseconds)
            }, lost: lost, duplexes: duplexes, duplexed: duplexed, sparesRemoved: sparesRemoved,
            sparesInstalled: sparesInstalled)
    }
}

extension PairState {
    /// The protocol's name for the pair's `state`.
    init(_ state: LifecycleState) {
        switch state {
        case .duplexing: self = .duplexing
        case .duplexed: self = .duplexed
        case .simplex: self = .simplex
        case .failed: self = .failed
        }
    }
}

extension ServiceStateName {
    /// The protocol's name for the service's state.
    init(_ name: ServiceState.Name) {
        switch name {
        case .starting: self = .starting
        case .duplexing: self = .duplexing
        case .duplexed: self = .duplexed
        case .replicating: self = .replicating
        case .simplex: self = .simplex
        case .stopping: self = .stopping
        case .failed: self = .failed
        }
    }
}
