import MirrorCore

/// What happened to the module pair over the service's life: the faults reported, the failovers
/// and their blackouts, the modules removed and installed, the duplexes run. `--once --json`
/// reports it as the summary's `lifecycle` object when any fault was reported.
public struct LifecycleRecord: Sendable, Hashable, Encodable {
    /// A failover: the fault that caused it and its blackout.
    public struct Failover: Sendable, Hashable, Encodable {
        /// The fault on the active module.
        public var fault: String
        /// The switch-over's blackout, microseconds.
        public var blackoutMicroseconds: UInt64

        enum CodingKeys: String, CodingKey {
            case fault, blackoutMicroseconds = "blackout_us"
        }
    }

    /// Where the pair stands now.
    public var state: LifecycleState = .duplexing
    /// The last ``keptFaults`` faults reported, as `"active module: uncorrectable error at frame 81234"`.
    public var faults: [String] = []
    /// Faults kept in ``faults`` (a long-running daemon may count many correctable errors).
    public static let keptFaults = 100

    /// Adds `fault` to ``faults``, dropping the oldest past ``keptFaults``.
    mutating func note(_ fault: ModuleFault) {
        faults.append(fault.description)
        if faults.count > Self.keptFaults { faults.removeFirst(faults.count - Self.keptFaults) }
    }
    /// Every failover.
    public var failovers: [Failover] = []
    /// Spares removed (failed, or predicted to fail).
    public var sparesRemoved = 0
    /// Replacement spares installed.
    public var sparesInstalled = 0
    /// Duplexes run, the first included.
    public var duplexes = 0
    /// Duplexes that ended duplexed.
    public var duplexed = 0
    /// What was lost, when the pair failed for good.
    public var lost: String?

    /// Whether there is anything beyond one duplex to report.
    public var hasEvents: Bool { !faults.isEmpty || sparesInstalled > 0 || duplexes > 1 }

    enum CodingKeys: String, CodingKey {
        case state, faults, failovers, lost, duplexes, duplexed
        case sparesRemoved = "spares_removed", sparesInstalled = "spares_installed"
    }

    /// Encodes every key, `lost` as null when nothing was lost.
    public func encode(to encoder: any Encoder) throws {
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
