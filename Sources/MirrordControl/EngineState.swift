/// The duplex engine's state, as `status` reports it in `progress.engine_state`:
/// `idle → tracking → full_copy → passes → blackout → verify → duplexed`, or `failed`; with a
/// spare on another host `… → blackout → first_epoch → replicating`.
///
/// The protocol's own enum (the daemon maps the engine's `DuplexState` onto it, raw value for raw
/// value), so that `mirrorctl` can say which phase a duplex is in without linking the engine.
package enum EngineState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Nothing started yet.
    case idle
    /// Dirty tracking and DMA dual-write are being switched on.
    case tracking
    /// Every frame is being copied from the active module to the spare.
    case fullCopy = "full_copy"
    /// Harvest-and-copy passes are shrinking the dirty set.
    case passes
    /// The CPUs and the DMA engine are stopped for the final copy.
    case blackout
    /// Every frame of the spare is being compared with the active module.
    case verify
    /// The spare equals the active module and every write reaches both.
    case duplexed
    /// The first epoch is being committed on the spare on another host.
    case firstEpoch = "first_epoch"
    /// The spare on another host holds the first epoch; epochs keep it level.
    case replicating
    /// The duplex did not reach `duplexed`.
    case failed
}
