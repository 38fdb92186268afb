/// The states of one duplex, in the order a successful duplex passes through them.
///
/// `idle → tracking → full_copy → passes → blackout → verify → duplexed`, or `failed` from any
/// state. The raw values are the names used in summaries, logs and journal fields.
public enum DuplexState: String, Sendable, Codable, CaseIterable {
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
    /// Every frame of the spare is being compared with the active module, in lockstep.
    case verify
    /// The spare equals the active module and every write reaches both: fault tolerant.
    case duplexed
    /// The first epoch is being committed on the spare on another host (after the final
    /// blackout, in place of the verify).
    case firstEpoch = "first_epoch"
    /// The spare on another host holds the first epoch; epochs keep it level from now on.
    case replicating
    /// The duplex did not reach `duplexed`; the summary says why.
    case failed
}
