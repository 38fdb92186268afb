/// What happened to the module pair over the daemon's life, as `status` reports it in
/// `lifecycle` (the same keys as the `--json` summary's `lifecycle`).
package struct LifecycleReport: Sendable, Hashable, Codable {
    /// Where the pair stands.
    package var state: PairState
    /// The last faults reported (at most 100), as `"active module: uncorrectable error at frame 81234"`.
    package var faults: [String]
    /// Every failover.
    package var failovers: [FailoverReport]
    /// What was lost, when the pair failed for good.
    package var lost: String?
    /// Duplexes run, the first included.
    package var duplexes: Int
    /// Duplexes that ended duplexed.
    package var duplexed: Int
    /// Spares removed (failed, or predicted to fail).
    package var sparesRemoved: Int
    /// Replacement spares installed.
    package var sparesInstalled: Int

    /// A report of every value.
    package init(
        state: PairState, faults: [String] = [], failovers: [FailoverReport] = [], lost: String? = nil,
        duplexes: Int = 0, duplexed: Int = 0, sparesRemoved: Int = 0, sparesInstalled: Int = 0
    ) {
        self.state = state
        self.faults = faults
        self.failovers = failovers
        self.lost = lost
        self.duplexes = duplexes
        self.duplexed = duplexed
        self.sparesRemoved = sparesRemoved
        self.sparesInstalled = sparesInstalled
    }

    /// The wire's names (docs/control.md).
    enum CodingKeys: String, CodingKey {
        case state, faults, failovers, lost, duplexes, duplexed
        case sparesRemoved = "spares_removed"
        case sparesInstalled = "spares_installed"
    }

    /// Encodes every key, `lost` as `null` when nothing was lost (decoding is the synthesized one).
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: CodingKeys.self)
        try fields.encode(state, forKey: .state)
        try fields.encode(faults, forKey: .faults)
        try fields.encode(failovers, forKey: .failovers)
        try fields.encode(lost, forKey: .lost)
        try fields.encode(duplexes, forKey: .duplexes)
        try fields.encode(duplexed, forKey: .duplexed)
        try fields.encode(sparesRemoved, forKey: .sparesRemoved)
        try fields.encode(sparesInstalled, forKey: .sparesInstalled)
    }
}
