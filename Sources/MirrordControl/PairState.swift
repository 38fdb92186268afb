/// Where the module pair stands, as `status` reports it in `state` and `lifecycle.state`:
/// `duplexing → duplexed → simplex → duplexing → …`, or `failed`.
///
/// The protocol's own enum (the daemon maps the engine's `LifecycleState` onto it), so that
/// `mirrorctl` reads a typed state without linking the engine.
package enum PairState: String, Sendable, Hashable, CaseIterable, Codable {
    /// A duplex is bringing the spare into lockstep.
    case duplexing
    /// Active and spare are in lockstep: fault tolerant.
    case duplexed
    /// One module runs the machine; not fault tolerant until a spare is duplexed.
    case simplex
    /// The machine's memory is lost, or a duplex failed for good.
    case failed
}
