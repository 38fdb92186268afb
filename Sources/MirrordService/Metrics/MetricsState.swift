/// The state the metrics' `mirrord_state{state=…}` names: the service's own while it runs, and
/// `stopped` once a graceful shutdown (SIGTERM, SIGINT) ended it, so that a scrape after a clean
/// stop never reads a daemon that is gone as `duplexed`.
enum MetricsState: String, Sendable, Hashable, CaseIterable {
    /// ``ServiceState/Name/starting``.
    case starting
    /// ``ServiceState/Name/duplexing``.
    case duplexing
    /// ``ServiceState/Name/duplexed``.
    case duplexed
    /// ``ServiceState/Name/replicating``.
    case replicating
    /// ``ServiceState/Name/simplex``.
    case simplex
    /// ``ServiceState/Name/stopping``.
    case stopping
    /// ``ServiceState/Name/failed``: the service ended on a failure (the file keeps saying so).
    case failed
    /// The service ended on a graceful shutdown: the last thing the file says.
    case stopped

    /// The metrics' name of the service's state `name`.
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
