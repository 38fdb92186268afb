/// What the wiring layer does at two moments of each epoch, for output commit: a store counts as
/// *released* only once the epoch that holds it has committed (as Remus holds back network
/// output), so the record of what was released must be taken in the pause and written out only
/// after the commit.
public struct ReplicationHooks: Sendable {
    /// Called inside epoch `epoch`'s pause, every CPU and the DMA engine stopped: read the writers'
    /// sequence here. It must not block. A clean stop that takes a staged epoch into its last one
    /// calls it again for that epoch, at the stop: what it read then supersedes the first reading.
    public var paused: @Sendable (_ epoch: UInt64) -> Void
    /// Called once epoch `epoch` has committed on the spare (on the shipping thread): release
    /// what its pause recorded.
    public var committed: @Sendable (_ epoch: UInt64) -> Void
    /// Called on the replicator's thread just after epoch `epoch`'s pause resumed the writers:
    /// with copy-on-write staging before its frames, still pending, are copied; without it after
    /// the copy. Not for a clean stop's last epoch (the machine stays stopped) nor the sync's
    /// first. For measurements and tests, outside the pause.
    public var resumed: @Sendable (_ epoch: UInt64) -> Void

    /// Hooks that do `paused` and `committed`; by default nothing.
    public init(
        paused: @escaping @Sendable (UInt64) -> Void = { _ in },
        committed: @escaping @Sendable (UInt64) -> Void = { _ in },
        resumed: @escaping @Sendable (UInt64) -> Void = { _ in }
    ) {
        self.paused = paused
        self.committed = committed
        self.resumed = resumed
    }
}
