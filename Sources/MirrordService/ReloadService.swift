import Logging
import MirrorCore
import MirrorSystemd
import MirrordConfig
import ServiceLifecycle
import UnixSignals

/// Re-reads the configuration file on SIGHUP (`systemctl reload mirrord`).
///
/// A valid file is put in force: `[duplex]` keys reach the engine at its next pass (or the next
/// duplex); keys that shape the machine are kept until a restart, and the log and `STATUS=` say
/// so. An invalid file is rejected with an error naming file, line and key; the running
/// configuration stays in force and the daemon keeps running. The reload is announced with
/// `RELOADING=1` and ends with `READY=1`, as systemd expects of a notify service.
package final class ReloadService: Service, Sendable {
    private let configuration: RunningConfiguration
    private let duplex: DuplexService
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let environment: [String: String]

    /// A reload service for the daemon's `configuration`, applying changes to `duplex`.
    package init(
        configuration: RunningConfiguration, duplex: DuplexService, notifier: SystemdNotifier, logger: Logger,
        environment: [String: String]
    ) {
        self.configuration = configuration
        self.duplex = duplex
        self.notifier = notifier
        self.logger = logger
        self.environment = environment
    }

    /// Reloads on each SIGHUP until a graceful shutdown.
    package func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// Handles one reload request.
    package func reload() {
        notifier.reloading(status: "reloading configuration")
        guard let path = configuration.path else {
            logger.notice("reload: running on the built-in defaults (no --config); nothing to re-read")
            notifier.ready(status: duplex.status)
            return
        }
        let candidate: MirrordConfiguration
        do {
            candidate = try ConfigurationLoader.load(path: path, environment: environment)
        } catch {
            logger.configurationRejected(error, "reload rejected: \(error); the running configuration stays in force")
            finish(outcome: "reload rejected (\(error)); running configuration kept")
            return
        }
        let running = configuration.current
        let runningFrames = running.frames
        if candidate.policy.thresholdFrames > runningFrames {
            // Checked against the new memory.size, which waits for a restart; the running one is smaller.
            let error = ConfigurationError(
                source: path, line: 0, key: "duplex.threshold_frames",
                message:
                    "\(candidate.policy.thresholdFrames) is more than the \(runningFrames) frames of the running memory.size"
            )
            logger.configurationRejected(error, "reload rejected: \(error); the running configuration stays in force")
            finish(outcome: "reload rejected (\(error)); running configuration kept")
            return
        }
        let changed = candidate.changedKeys(comparedTo: running)
        let live = changed.filter(MirrordConfiguration.isReloadable)
        let pending = changed.filter { !MirrordConfiguration.isReloadable($0) }
        // Keys that need a restart keep their running values until then.
        let applied = running.applyingReloadable(from: candidate)
        let previous = configuration.replace(with: applied)
        duplex.engine.updatePolicy(applied.policy)

        let describe = { (key: String) in
            "\(key) = \(candidate.value(forKey: key)) (was \(previous.value(forKey: key)))"
        }
        var parts: [String] = []
        if !live.isEmpty { parts.append("applied " + live.map(describe).joined(separator: ", ")) }
        if !pending.isEmpty {
            parts.append("needs a restart: " + pending.joined(separator: ", "))
            logger.warning(
                "reload: \(pending.joined(separator: ", ")) changed in \(path) and take effect only after a restart (systemctl restart mirrord)"
            )
        }
        if parts.isEmpty { parts.append("no change") }
        let summary = parts.joined(separator: "; ")
        logger.notice(
            "configuration reloaded from \(path): \(summary)",
            metadata: [
                "message_id": "\(MessageID.configurationReloaded.rawValue)",
                "threshold_frames": "\(applied.policy.thresholdFrames)",
            ])
        finish(outcome: "reloaded (\(summary))")
    }

    private func finish(outcome: String) {
        notifier.ready(status: duplex.statusAfterReload(outcome))
    }
}
