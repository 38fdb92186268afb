import MirrorCore

/// What happened to the module pair over the service's life: the faults reported, the failovers
/// and their blackouts, the modules removed and installed, the duplexes run. `--once --json`
/// reports it as the summary's `lifecycle` object when any fault was reported.
package struct LifecycleRecord: Sendable, Hashable, Encodable {
    /// A failover: the fault that caused it and its blackout.
    package struct Failover: Sendable, Hashable, Encodable {
        /// The fault on the active module.
        package var fault: String
        /// The switch-over's blackout, microseconds.
        package var blackoutMicroseconds: UInt64

        enum CodingKeys: String, CodingKey {
            case fault
            case blackoutMicroseconds = "blackout_us"
        }
    }

    /// Where the pair stands now.
    package var state: LifecycleState = .duplexing
    /// The last ``keptFaults`` faults reported, as `"active module: uncorrectable error at frame 81234"`.
    package var faults: [String] = []
    /// Faults kept in ``faults`` (a long-running daemon may count many correctable errors).
    package static let keptFaults = 100

    /// Adds `fault` to ``faults``, dropping the oldest past ``keptFaults``.
    mutating func note(_ fault: ModuleFault) {
        faults.append(fault.description)
        if faults.count > Self.keptFaults { faults.removeFirst(faults.count - Self.keptFaults) }
    }
    /// Every failover.
    package var failovers: [Failover] = []
    /// Spares removed (failed, or predicted to fail).
    package var sparesRemoved = 0
    /// Replacement spares installed.
    package var sparesInstalled = 0
    /// Duplexes run, the first included.
    package var duplexes = 0
    /// Duplexes that ended duplexed.
    package var duplexed = 0
    /// What was lost, when the pair failed for good.
    package var lost: String?

    /// Whether there is anything beyond one duplex to report.
    package var hasEvents: Bool { !faults.isEmpty || sparesInstalled > 0 || duplexes > 1 }

    enum CodingKeys: String, CodingKey {
        case state, faults, failovers, lost, duplexes, duplexed
        case sparesRemoved = "spares_removed"
        case sparesInstalled = "spares_installed"
    }

    /// Encodes every key, `lost` as null when nothing was lost.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state.rawValue, forKey: .state)
        try container.encode(faults, forKey: .faults)
        try container.encode(failovers, forKey: .failovers)
        try container.encode(lost, forKey: .lost)
        try container.encode(duplexes, forKey: .duplexes)
        try container.encode(duplexed, forKey: .duplexed)
        try container.encode(sparesRemoved, forKey: .sparesRemoved)
        try container.encode(sparesInstalled, forKey: .sparesInstalled)
    }
}
