/// The fixed `MESSAGE_ID`s of mirrord's key journal entries. Each has an entry in
/// `systemd/mirrord.catalog` explaining what it means and what to do, shown by `journalctl -x`.
package enum MessageID: String, Sendable, CaseIterable {
    /// A duplex started.
    case duplexStarted = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a01"
    /// A harvest-and-copy pass finished.
    case passCompleted = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a02"
    /// The blackout ended.
    case blackoutCompleted = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a03"
    /// Active and spare are duplexed and in lockstep.
    case duplexed = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a04"
    /// The verify found frames that differ: not duplexed.
    case verifyFailed = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a05"
    /// A configuration file was rejected.
    case configurationRejected = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a06"
    /// A reloaded configuration was applied.
    case configurationReloaded = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a07"
    /// Convergence control slowed the CPUs for the first time in a duplex.
    case convergenceEngaged = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a08"
    /// A memory module failed, or is predicted to (its correctable errors passed the limit).
    case moduleFailed = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a09"
    /// The CPUs and DMA were switched to the spare: the machine runs simplex on it.
    case failover = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0a"
    /// A replacement spare module was installed.
    case spareInstalled = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0b"
    /// The pair is duplexed again after running simplex.
    case reduplexed = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0c"
    /// A second failure while simplex (or the active module during a duplex): memory lost.
    case memoryLost = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0d"
    /// The service entered another state (`MIRRORD_STATE`, `PREVIOUS_STATE`).
    case stateChanged = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0e"
    /// `mirrord takeover` brought the spare host's export to its last committed epoch and runs the
    /// machine from it, simplex (`EPOCH`, `FRAMES_REPLAYED`, `TAKEOVER_MS`).
    case tookOver = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a0f"
    /// The spare on another host holds the first epoch: epoch replication began (`SPARE`).
    case replicating = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a20"
    /// The spare on another host stopped answering or failed: the primary runs on alone.
    case spareHostLost = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a21"
    /// A clean stop while replicating committed a last epoch with every CPU stopped: the spare
    /// host's export equals memory as it stopped (`EPOCH`). What the OCF agent's demote looks for.
    case lastEpochCommitted = "5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a22"
}
