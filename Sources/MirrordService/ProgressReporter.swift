import Foundation
import Logging
import MirrorCore
import MirrorSystemd
import MirrordConfig
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Turns the engine's progress events into what operators see: log entries (one line for people,
/// structured metadata that becomes journal fields: `MIRRORD_STATE`, `DUPLEX_PASS`,
/// `DIRTY_FRAMES`, `COPIED_FRAMES`, `THRESHOLD_FRAMES`, `DURATION_USEC`, `BLACKOUT_USEC`,
/// `VERIFY_MISMATCHES`, and `MESSAGE_ID` on key events), `STATUS=` lines, `READY=1` when the
/// engine has started, and `WATCHDOG=1` as the engine makes progress.
final class ProgressReporter: Sendable {
    let logger: Logger
    let geometry: MemoryGeometry
    let notifier: SystemdNotifier
    let watchdog: WatchdogPinger
    /// `fault.hang_after_pass`: after this pass the engine hangs (0: never).
    let hangAfterPass: Int
    /// Ends a deliberate hang, so that the daemon can still be stopped.
    let stopToken: DuplexStopToken
    /// The lockstep scrub's work since its last journal line.
    private let scrubLedger = Mutex(ScrubLedger())
    /// The progress the control socket's `status` reports.
    let live = Mutex(LiveProgress())
    /// The engine's state, the service's state (which every status line begins with), the status
    /// text sent last, its own part (without a reload's outcome in front), and whether `READY=1`
    /// was sent.
    private let current = Mutex<
        (state: DuplexState, service: ServiceState.Name, status: String, engineStatus: String, ready: Bool)
    >((.idle, .starting, "starting", "starting", false))

    init(
        logger: Logger, geometry: MemoryGeometry, notifier: SystemdNotifier, hangAfterPass: Int,
        stopToken: DuplexStopToken
    ) {
        self.logger = logger
        self.geometry = geometry
        self.notifier = notifier
        self.watchdog = WatchdogPinger(notifier: notifier)
        self.hangAfterPass = hangAfterPass
        self.stopToken = stopToken
    }

    /// The state the engine is in, as the last event said.
    var state: DuplexState { current.withLock { $0.state } }

    /// The service's state, as the last transition left it.
    var serviceState: ServiceState.Name { current.withLock { $0.service } }

    /// The last status text sent.
    var status: String { current.withLock { $0.status } }

    /// Sends `detail` as the status line, after the service's state (and remembers it).
    func setStatus(_ detail: String) {
        notifier.status(remember(detail))
    }

    /// Remembers `detail`, after the service's state and bounded for `STATUS=`, as the status
    /// and the one last sent; returns it.
    private func remember(_ detail: String) -> String {
        current.withLock {
            let line = StatusText.bounded(StatusText.line(state: $0.service, detail: detail))
            $0.status = line
            $0.engineStatus = line
            return line
        }
    }

    /// Sends `detail` as the status line with `READY=1`, unless ready was sent already (then
    /// only the status): the service did not start with a duplex (a takeover).
    func becomeReady(status detail: String) {
        let first = current.withLock { c -> Bool in
            defer { c.ready = true }
            return !c.ready
        }
        if first { notifier.ready(status: remember(detail)) } else { setStatus(detail) }
    }

    /// Replaces the status text as it is, without sending it.
    func replaceStatus(_ text: String) {
        current.withLock {
            $0.status = StatusText.bounded(text)
            $0.engineStatus = $0.status
        }
    }

    /// The service entered `state` from `previous`: the status lines that follow begin with its
    /// name, and the journal says so (`MIRRORD_STATE`, with its `MESSAGE_ID`). Called under the
    /// service's state lock, so that the entry is in place when the state can be read.
    func enter(_ state: ServiceState, from previous: ServiceState) {
        current.withLock { $0.service = state.name }
        guard state.name != previous.name else { return }
        logger.info(
            "state \(state.name.rawValue) (was \(previous.name.rawValue))",
            metadata: [
                "mirrord_state": "\(state.name.rawValue)", "previous_state": "\(previous.name.rawValue)",
                "message_id": "\(MessageID.stateChanged.rawValue)",
            ])
    }

    /// A graceful shutdown began in `stateName`: `STOPPING=1`, with the status saying so.
    func stopping(in stateName: String) {
        notifier.stopping(status: remember("stopping in state \(stateName)"))
    }

    /// The status with a reload's `outcome` in front of the engine's own text, replacing any
    /// earlier outcome: the status says where things stand now, not a history of reloads. It is
    /// remembered (not sent: the reload sends it with `READY=1`) and returned.
    func statusAfterReload(_ outcome: String) -> String {
        current.withLock {
            $0.status = StatusText.bounded("\(outcome). \($0.engineStatus)")
            return $0.status
        }
    }

    /// Logs the start of a duplex with the configuration in force.
    func starting(configuration: MirrordConfiguration, backend: String) {
        let w = configuration.machine.workload
        let policy = configuration.policy
        logger.info(
            "duplex starting: \(ByteCount.format(geometry.byteCount)) (\(geometry.frameCount) frames) on \(backend); workload \(w.pattern.rawValue) on \(w.cpus) CPUs at \(w.rate), DMA at \(configuration.machine.dma.rate) (dual-write \(policy.dmaDualWrite ? "on" : "OFF")); threshold \(policy.thresholdFrames) frames, at most \(policy.maxPasses) passes",
            metadata: [
                "mirrord_state": "idle", "threshold_frames": "\(policy.thresholdFrames)",
                "message_id": "\(MessageID.duplexStarted.rawValue)",
            ])
    }

    /// The progress as the last events left it.
    var progress: LiveProgress { live.withLock { $0 } }

    /// Handles one event (called on the engine's thread).
    func observe(_ event: DuplexEvent) {
        watchdog.progress()
        live.withLock { $0.observe(event) }
        if case .stateChanged(_, let to) = event {
            let becameReady = current.withLock { c -> Bool in
                c.state = to
                defer { c.ready = true }
                return !c.ready
            }
            if becameReady, let text = StatusText.forEvent(event, geometry: geometry) {
                // The configuration is loaded and the engine runs: systemctl start returns now.
                notifier.ready(status: remember(text))
            }
        }
        if let text = StatusText.forEvent(event, geometry: geometry),
            current.withLock({ StatusText.line(state: $0.service, detail: text) != $0.engineStatus })
        {
            setStatus(text)
        }
        log(event)
        if case .passCompleted(let pass, _, _) = event, pass.pass == hangAfterPass {
            hang(after: pass.pass)
        }
    }

    private func log(_ event: DuplexEvent) {
        switch event {
        case .stateChanged(_, let to):
            logger.debug("state \(to.rawValue)", metadata: ["mirrord_state": "\(to.rawValue)"])
        case .progress:
            break
        case .fullCopyCompleted(let copy):
            logger.info(
                "full copy: \(ByteCount.format(copy.bytes)) in \(milliseconds(copy.durationMicroseconds)) ms (\(format(copy.gigabytesPerSecond, 2)) GB/s)",
                metadata: [
                    "mirrord_state": "full_copy", "copied_frames": "\(geometry.frameCount)",
                    "duration_usec": "\(copy.durationMicroseconds)",
                ])
        case .passCompleted(let pass, let threshold, let target):
            let share = Double(pass.dirtyFrames) * 100 / Double(geometry.frameCount)
            let predicted =
                pass.predictedBlackoutMicroseconds.map { "; blackout \($0) µs predicted (target \(target) µs)" } ?? ""
            let throttle =
                pass.throttlePercent > 0 ? "; throttle \(StatusText.throttleText(pass.cpuThrottlePercent))" : ""
            var metadata: Logger.Metadata = [
                "mirrord_state": "passes", "duplex_pass": "\(pass.pass)", "dirty_frames": "\(pass.dirtyFrames)",
                "copied_frames": "\(pass.copiedFrames)", "threshold_frames": "\(threshold)",
                "duration_usec": "\(pass.durationMicroseconds)", "message_id": "\(MessageID.passCompleted.rawValue)",
                "throttle_percent": "\(Int(pass.throttlePercent.rounded()))",
                "dirty_rate_fps": "\(Int(pass.dirtyRateFramesPerSecond))",
            ]
            if let value = pass.predictedBlackoutMicroseconds { metadata["predicted_blackout_usec"] = "\(value)" }
            logger.info(
                "pass \(pass.pass): \(pass.dirtyFrames) dirty frames (\(format(share, 2))%) copied in \(milliseconds(pass.durationMicroseconds)) ms, \(Int(pass.dirtyRateFramesPerSecond)) frames/s dirtied; \(pass.remainingDirtyFrames) dirty now, threshold \(threshold)\(predicted)\(throttle)",
                metadata: metadata)
        case .throttleChanged(let cpuPercent, let engaged, let reason):
            let text = "convergence control: throttle \(StatusText.throttleText(cpuPercent)) (\(reason))"
            var metadata: Logger.Metadata = [
                "mirrord_state": "passes", "throttle_percent": "\(Int((cpuPercent.max() ?? 0).rounded()))",
                "cpu_throttle_percent": "\(cpuPercent.map { String(Int($0.rounded())) }.joined(separator: ","))",
            ]
            if engaged { metadata["message_id"] = "\(MessageID.convergenceEngaged.rawValue)" }
            if engaged {
                logger.notice("\(text)", metadata: metadata)
            } else {
                logger.info("\(text)", metadata: metadata)
            }
        case .passesEnded(let reason, let dirty, let predicted):
            var metadata: Logger.Metadata = ["mirrord_state": "passes", "dirty_frames": "\(dirty)"]
            if let predicted { metadata["predicted_blackout_usec"] = "\(predicted)" }
            let prediction = predicted.map { ", \($0) µs predicted" } ?? ""
            logger.info(
                "passes ended (\(reason.rawValue)) with \(dirty) dirty frames\(prediction); entering the blackout",
                metadata: metadata)
        case .blackoutCompleted(let b):
            var metadata: Logger.Metadata = [
                "mirrord_state": "blackout", "copied_frames": "\(b.finalFrames)",
                "blackout_usec": "\(b.durationMicroseconds)", "duration_usec": "\(b.durationMicroseconds)",
                "message_id": "\(MessageID.blackoutCompleted.rawValue)",
            ]
            if let predicted = b.predictedMicroseconds { metadata["predicted_blackout_usec"] = "\(predicted)" }
            let prediction = b.predictedMicroseconds.map { ", \($0) µs predicted" } ?? ""
            logger.info(
                "blackout: \(b.durationMicroseconds) µs\(prediction) (stop \(b.stopMicroseconds) µs, final copy of \(b.finalFrames) frames \(b.finalCopyMicroseconds) µs, verify \(b.verifyMicroseconds) µs)",
                metadata: metadata)
        case .verifyCompleted(let v):
            logger.info(
                "verify: \(v.framesChecked) frames compared, \(v.mismatches) differ (\(v.candidates) looked at twice) in \(milliseconds(v.durationMicroseconds)) ms",
                metadata: [
                    "mirrord_state": "verify", "verify_mismatches": "\(v.mismatches)",
                    "duration_usec": "\(v.durationMicroseconds)",
                ])
        case .firstEpochCommitted(let epoch):
            logger.info(
                "first epoch: \(epoch.frames) frames committed on the spare host in \(milliseconds(epoch.commitMicroseconds)) ms",
                metadata: [
                    "mirrord_state": "first_epoch", "epoch": "\(epoch.epoch)", "epoch_frames": "\(epoch.frames)",
                    "duration_usec": "\(epoch.commitMicroseconds)",
                ])
        case .finished(let summary):
            var metadata: Logger.Metadata = [
                "mirrord_state": "\(summary.finalState.rawValue)",
                "verify_mismatches": "\(summary.verify?.mismatches ?? 0)",
                "duration_usec": "\(summary.totalMicroseconds)",
            ]
            let convergence = summary.convergence
            if convergence.stopExceedsTarget {
                logger.warning(
                    "stopping the CPUs alone took longer than the blackout target of \(convergence.targetMicroseconds) µs (stop \(summary.blackout?.stopMicroseconds ?? 0) µs): a CPU thread was descheduled on a busy host; no throttle can meet the target",
                    metadata: [
                        "mirrord_state": "\(summary.finalState.rawValue)",
                        "blackout_usec": "\(summary.blackout?.durationMicroseconds ?? 0)",
                        "stop_usec": "\(summary.blackout?.stopMicroseconds ?? 0)",
                    ])
            }
            if let blackout = summary.blackout,
                blackout.overTargetOffCPU(targetMicroseconds: convergence.targetMicroseconds)
            {
                logger.warning(
                    "the blackout (\(blackout.durationMicroseconds) µs) exceeded the target of \(convergence.targetMicroseconds) µs because mirrord's threads were off their CPUs for \(blackout.offCPUMicroseconds) µs of it: the host (steal time) or another thread had the cores",
                    metadata: [
                        "mirrord_state": "\(summary.finalState.rawValue)",
                        "blackout_usec": "\(blackout.durationMicroseconds)",
                        "off_cpu_usec": "\(blackout.offCPUMicroseconds)",
                    ])
            }
            if let slowdown = convergence.workloadSlowdown, convergence.maximumThrottlePercent > 0 {
                logger.info(
                    "convergence: \(convergence.policy.rawValue), throttle up to \(Int(convergence.maximumThrottlePercent.rounded()))% for \(milliseconds(convergence.throttledMicroseconds)) ms; the workload ran at \(format(slowdown * 100, 1))% of its store rate during the duplex",
                    metadata: [
                        "mirrord_state": "\(summary.finalState.rawValue)",
                        "throttle_percent": "\(Int(convergence.maximumThrottlePercent.rounded()))",
                    ])
            }
            if summary.isDuplexed {
                metadata["message_id"] = "\(MessageID.duplexed.rawValue)"
                metadata["blackout_usec"] = "\(summary.blackout?.durationMicroseconds ?? 0)"
                logger.info("\(summary.message)", metadata: metadata)
            } else if summary.outcome.isReplicating {
                // The state entry and the replicating entry (with its MESSAGE_ID) follow.
                metadata["blackout_usec"] = "\(summary.blackout?.durationMicroseconds ?? 0)"
                if let resync = summary.resync { metadata["resent_frames"] = "\(resync.resentFrames)" }
                logger.info("\(summary.message)", metadata: metadata)
            } else if summary.outcome == .failed(.stopped) {
                logger.info("\(summary.message)", metadata: metadata)
            } else {
                if summary.outcome == .failed(.verifyMismatch) {
                    metadata["message_id"] = "\(MessageID.verifyFailed.rawValue)"
                }
                logger.error("duplex failed: \(summary.message)", metadata: metadata)
            }
        }
    }

    /// Reports one slice of the lockstep scrub (`sweepEnded`: it reached the end of memory);
    /// returns whether it found real differences, which the caller reports
    /// (``spareSuspect(_:autoReduplex:)``). A healthy lockstep is journalled now and then
    /// (``ScrubLedger``), so that an operator can tell from the journal that scrubbing runs.
    func scrubbed(
        _ result: DuplexSummary.Verify, frames: Range<Int>, sweepEnded: Bool,
        now: UInt64 = MonotonicClock.nanoseconds()
    ) -> Bool {
        watchdog.progress()
        guard result.mismatches == 0 else { return true }
        if let line = scrubLedger.withLock({ $0.record(frames: frames.count, sweepEnded: sweepEnded, now: now) }) {
            let since =
                line.first ? "since the duplex" : "in the last \(ScrubLedger.interval / 60_000_000_000) minutes or more"
            logger.info(
                "lockstep holds: scrubbed \(line.frames) frames (\(line.sweeps) whole sweeps of memory) \(since), 0 differ",
                metadata: ["mirrord_state": "duplexed", "scrubbed_frames": "\(line.frames)", "verify_mismatches": "0"])
        }
        return false
    }

    /// The deliberate hang of `fault.hang_after_pass`: the engine stops making progress (and so
    /// stops feeding the watchdog) until the daemon is stopped.
    private func hang(after pass: Int) {
        logger.warning(
            "fault.hang_after_pass = \(pass): the engine hangs now (test fault)",
            metadata: ["mirrord_state": "passes", "duplex_pass": "\(pass)"])
        setStatus("hung after pass \(pass) (fault.hang_after_pass)")
        while !stopToken.isStopRequested { usleep(10_000) }
    }

    private func milliseconds(_ micros: UInt64) -> String { format(Double(micros) / 1000, 1) }
}

/// `value` with `digits` digits after the point.
package func format(_ value: Double, _ digits: Int) -> String {
    String(format: "%.\(digits)f", value)
}
