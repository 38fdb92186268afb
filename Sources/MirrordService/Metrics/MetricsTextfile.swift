import CoreMetrics
import Logging
import MirrorCore
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The service's metrics for Prometheus, written in node_exporter's textfile format to
/// `metrics.textfile` after each pass and state change (node_exporter has no network way into the
/// unit, which runs with `PrivateNetwork=yes`): the swift-metrics API on a registry of its own,
/// swift-prometheus for the exposition format, and a temporary file renamed into place so that a
/// scrape never reads half a file.
final class MetricsTextfile: Sendable {
    /// Where the file goes.
    let path: String
    private let registry: PrometheusCollectorRegistry
    private let duplexed: CoreMetrics.Gauge
    private let states: [MetricsState: CoreMetrics.Gauge]
    private let passes: CoreMetrics.Gauge
    private let dirtyFrames: CoreMetrics.Gauge
    private let blackoutSeconds: CoreMetrics.Gauge
    private let predictedBlackoutSeconds: CoreMetrics.Gauge
    private let verifyMismatches: CoreMetrics.Gauge
    private let failovers: CoreMetrics.Gauge
    private let duplexes: CoreMetrics.Gauge
    private let lockstepSeconds: CoreMetrics.Gauge
    private let throttleRatio: CoreMetrics.Gauge
    /// A spare on another host: the last committed epoch, how long ago, its lag, pause and link.
    private let epoch: CoreMetrics.Gauge
    private let epochAgeSeconds: CoreMetrics.Gauge
    private let epochLagSeconds: CoreMetrics.Gauge
    private let epochPauseSeconds: CoreMetrics.Gauge
    private let linkBytesPerSecond: CoreMetrics.Gauge
    private let logger: Logger
    /// Whether the last write failed (logged once until one succeeds again).
    private let failing = Atomic<Bool>(false)
    private let writing = Mutex(())

    /// Metrics to be written to `path`.
    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Gauge {
            CoreMetrics.Gauge(label: name, dimensions: dimensions, factory: factory)
        }
        duplexed = gauge("mirrord_duplexed")
        states = Dictionary(
            uniqueKeysWithValues: MetricsState.allCases.map {
                ($0, gauge("mirrord_state", [("state", $0.rawValue)]))
            }
        )
        passes = gauge("mirrord_passes")
        dirtyFrames = gauge("mirrord_dirty_frames")
        blackoutSeconds = gauge("mirrord_blackout_seconds")
        predictedBlackoutSeconds = gauge("mirrord_predicted_blackout_seconds")
        verifyMismatches = gauge("mirrord_verify_mismatches")
        failovers = gauge("mirrord_failovers")
        duplexes = gauge("mirrord_duplexes")
        lockstepSeconds = gauge("mirrord_lockstep_seconds")
        throttleRatio = gauge("mirrord_throttle_ratio")
        epoch = gauge("mirrord_epoch")
        epochAgeSeconds = gauge("mirrord_epoch_age_seconds")
        epochLagSeconds = gauge("mirrord_epoch_lag_seconds")
        epochPauseSeconds = gauge("mirrord_epoch_pause_seconds")
        linkBytesPerSecond = gauge("mirrord_link_bytes_per_second")
    }

    /// Sets every metric from the service's `state` and the rest, and writes the file.
    func publish(state: MetricsState, lifecycle: LifecycleRecord, progress: LiveProgress, summary: DuplexSummary?) {
        writing.withLock { _ in
            duplexed.record(state == .duplexed ? 1 : 0)
            for (name, gauge) in states { gauge.record(name == state ? 1 : 0) }
            passes.record(progress.passes.count)
            dirtyFrames.record(progress.lastPass?.remainingDirtyFrames ?? 0)
            blackoutSeconds.record(Double(progress.lastBlackout?.durationMicroseconds ?? 0) / 1e6)
            predictedBlackoutSeconds.record(Double(progress.lastPass?.predictedBlackoutMicroseconds ?? 0) / 1e6)
            verifyMismatches.record(summary?.verify?.mismatches ?? 0)
            failovers.record(lifecycle.failovers.count)
            duplexes.record(lifecycle.duplexes)
            let since = state == .duplexed ? progress.duplexedSince : nil
            lockstepSeconds.record(since.map { Double(MonotonicClock.nanoseconds() &- $0) / 1e9 } ?? 0)
            throttleRatio.record((progress.lastPass?.throttlePercent ?? 0) / 100)
            let last = progress.lastEpoch
            epoch.record(last?.epoch ?? 0)
            let age = last.map { _ in Double(MonotonicClock.nanoseconds() &- progress.lastEpochAt) / 1e9 }
            epochAgeSeconds.record(age ?? 0)
            epochLagSeconds.record(Double(last?.lagMicroseconds ?? 0) / 1e6)
            epochPauseSeconds.record(Double(last?.pauseMicroseconds ?? 0) / 1e6)
            linkBytesPerSecond.record(last?.linkBytesPerSecond ?? 0)
            write(registry.emitToBuffer())
        }
    }

    /// Writes `bytes` to a temporary file beside ``path`` and renames it into place.
    private func write(_ bytes: [UInt8]) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        // Readable by node_exporter's own user whatever the unit's UMask= (0077).
        var failure: Int32? = fd >= 0 ? nil : errno
        if fd >= 0 {
            if fchmod(fd, 0o644) != 0 { failure = errno }
            if failure == nil { failure = bytes.withUnsafeBytes { writeFully($0, to: fd) } }
            if close(fd) != 0 && failure == nil { failure = errno }
            if failure == nil && rename(temporary, path) != 0 { failure = errno }
        }
        if let failure {
            let reason = String(cString: strerror(failure))
            if fd >= 0 { unlink(temporary) }
            if !failing.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "cannot write the metrics file \(path): \(reason)", metadata: ["mirrord_state": "metrics"])
            }
        } else {
            failing.store(false, ordering: .relaxed)
        }
    }
}
