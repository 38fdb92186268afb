/// Where the service stands, as `status` reports it in `state`: `starting`, then
/// `duplexing → duplexed → simplex → duplexing → …`, ending in `stopping` or `failed`; a takeover
/// started to wait to be asked (`mirrord takeover --on-request`) is `waiting` until then.
///
/// The protocol's own enum (the daemon maps its life cycle's state onto it), so that `mirrorctl`
/// reads a typed state without linking the service. The module pair's own state, as the `--json`
/// summary has it, is ``PairState`` (in `lifecycle.state`).
package enum ServiceStateName: String, Sendable, Hashable, CaseIterable, Codable {
    /// A takeover waits to be asked (`take-over`); no machine runs on this host yet.
    case waiting
    /// The machine is being started; no duplex has begun.
    case starting
    /// A duplex is bringing the spare into lockstep.
    case duplexing
    /// Active and spare are in lockstep: fault tolerant.
    case duplexed
    /// The spare is on another host; epochs keep it an epoch or two behind.
    case replicating
    /// One module runs the machine; not fault tolerant until a spare is duplexed.
    case simplex
    /// A graceful shutdown is under way.
    case stopping
    /// The service ended on a failure: the memory is lost, or a duplex failed for good.
    case failed
}
