/// How one duplex ended: duplexed (and why the passes ended), or failed (and why).
///
/// Summaries, the journal and the exit status are derived from it; its ``result`` and ``reason``
/// names are the values of the JSON summary's `result` and `reason` keys.
public enum DuplexOutcome: Sendable, Hashable {
    /// The spare was verified equal to the active module and lockstep is on.
    case duplexed(PassEndReason)
    /// The spare on another host was brought level with the active module and its first epoch
    /// committed: epochs now keep it at most an epoch or two behind (never lockstep: no store
    /// reaches both hosts at once).
    case replicating(PassEndReason)
    /// The duplex did not reach `duplexed` (or, with a spare on another host, `replicating`).
    case failed(DuplexFailureReason)

    /// `"duplexed"`, `"replicating"` or `"failed"`.
    public var result: String {
        switch self {
        case .duplexed: "duplexed"
        case .replicating: "replicating"
        case .failed: "failed"
        }
    }

    /// Why the passes ended (when duplexed) or why the duplex failed, as the summary names it.
    public var reason: String {
        switch self {
        case .duplexed(let end), .replicating(let end): end.rawValue
        case .failed(let why): why.rawValue
        }
    }

    /// Whether the spare was proven equal and left in lockstep.
    public var isDuplexed: Bool {
        if case .duplexed = self { return true }
        return false
    }

    /// Whether a spare on another host is level with the active module up to its first epoch.
    public var isReplicating: Bool {
        if case .replicating = self { return true }
        return false
    }
}

/// Why a duplex failed.
public enum DuplexFailureReason: String, Sendable, Hashable, CaseIterable {
    /// The verify found frames that differ between the modules, confirmed with nothing running.
    case verifyMismatch = "verify_mismatch"
    /// A stop was requested (SIGTERM) before the duplex finished.
    case stopped
    /// The machine failed (tracking, blackout, memory).
    case hardwareError = "hardware_error"
    /// The duplex has not run yet.
    case notStarted = "not_started"
    /// A module failed during the duplex; the spare was never claimed duplexed.
    case moduleFailed = "module_failed"
    /// The spare on another host did not answer in time or its connection broke.
    case spareUnreachable = "spare_unreachable"
    /// The spare on another host failed the sync: a write it refused, a standby that did not
    /// answer, a damaged journal; another try (from scratch) may succeed.
    case spareFailed = "spare_failed"
    /// The spare on another host refused the sync, and trying again changes nothing: another
    /// host owns the export (it took over), or it is not mirrord's or too small.
    case spareRefused = "spare_refused"
}
