import Logging
import MirrorCore
import MirrorSystemd

/// What the operator sees of epoch replication: the status line, kept current once a second, the
/// watchdog fed by each commit (a stalled link is caught by `remote.timeout`, a hung replicator by
/// the watchdog), and the journal's entries for the spare host lost and found.
extension ProgressReporter {
    /// Takes in one replication event (on the thread where it happened).
    func observe(_ event: ReplicationEvent, spare: String) {
        switch event {
        case .epochCommitted(let report):
            watchdog.progress()
            let now = MonotonicClock.nanoseconds()
            let due = live.withLock { live -> Bool in
                live.lastEpoch = report
                live.lastEpochAt = now
                guard now &- live.lastEpochStatusAt >= Self.epochStatusInterval else { return false }
                live.lastEpochStatusAt = now
                return true
            }
            if due { setStatus(StatusText.replicating(report, spare: spare)) }
            logger.debug(
                "epoch \(report.epoch): \(report.frames) frames committed in \(report.commitMicroseconds) µs",
                metadata: [
                    "mirrord_state": "replicating", "epoch": "\(report.epoch)", "epoch_frames": "\(report.frames)",
                    "pause_usec": "\(report.pauseMicroseconds)", "commit_usec": "\(report.commitMicroseconds)",
                    "lag_usec": "\(report.lagMicroseconds)",
                ])
        case .dirtyLimitChanged(let frames, let reason):
            // As often as the link falls behind and catches up: debug level, as the throttle.
            logger.debug(
                "dirty-limit: writers held to \(frames) dirty frames (\(reason))",
                metadata: ["mirrord_state": "replicating", "dirty_limit_frames": "\(frames)"])
        case .finishing:
            setStatus("stopping: the epochs in flight commit on \(spare); then the last epoch, every CPU stopped")
        case .lastPause(let running):
            // Where a switch-over's outage begins: the machine runs nowhere until the other host
            // runs it from this epoch.
            let ran = (running + 500) / 1_000
            logger.info(
                "stopping: every CPU stopped for the last epoch, after running on \(ran) ms while the epochs in flight committed",
                metadata: ["mirrord_state": "stopping", "running_usec": "\(running)"])
        case .throttleChanged(let percent, let reason):
            // As often as the link falls behind (every epoch, on a slow link): the status and the
            // epochs' lag say it; the journal has it at debug level.
            logger.debug(
                "dirty-limit: CPUs slowed by \(Int(percent.rounded()))% (\(reason))",
                metadata: ["mirrord_state": "replicating", "throttle_percent": "\(Int(percent.rounded()))"])
        }
    }

    /// How often the status line follows the epochs (nanoseconds).
    static let epochStatusInterval: UInt64 = 1_000_000_000

    /// The spare on another host was lost: the primary runs on alone.
    func spareHostLost(reason: String, duringSync: Bool, unreachable: Bool) {
        let text =
            unreachable
            ? "spare host unreachable: \(reason); running alone, trying again"
            : "replication to the spare host failed: \(reason); running alone"
        logger.error(
            "\(text)",
            metadata: [
                "mirrord_state": "simplex", "message_id": "\(MessageID.spareHostLost.rawValue)",
                "during_sync": "\(duringSync)",
            ])
        setStatus(text)
    }
}
