import Logging
import MirrorCore
import MirrorSystemd
import MirrordConfig

/// The journal entries and status texts of fault tolerance in service: faults, failover,
/// simplex, replacement, re-duplex, and memory lost. Each key event has its `MESSAGE_ID`, and
/// fields for the module (`MODULE`), the fault (`FAULT_KIND`, `FRAME`) and the failover's
/// blackout (`FAILOVER_BLACKOUT_USEC`).
extension ProgressReporter {
    /// Tells operators of a transition (under the service's state lock, with the new state).
    func report(_ report: TransitionReport, configuration: MirrordConfiguration) {
        switch report {
        case .tookOver(let epoch, let frames, let milliseconds, let source):
            tookOver(epoch: epoch, framesReplayed: frames, milliseconds: milliseconds, source: source)
        case .correctable(let fault, let count, let limit, let failing):
            correctable(fault, count: count, limit: limit, failing: failing)
        case .faultNoted(let fault):
            faultNoted(fault)
        case .failedOver(let fault, let microseconds):
            failedOver(
                fault, blackoutMicroseconds: microseconds,
                targetMicroseconds: configuration.policy.blackoutTargetNanoseconds / 1_000)
        case .spareRemoved(let fault, let duringDuplex, let state):
            spareRemoved(fault, duringDuplex: duringDuplex, state: state)
        case .spareSuspect(let result, let autoReduplex):
            spareSuspect(result, autoReduplex: autoReduplex)
        case .spareInstalled(let autoReduplex):
            spareInstalled(autoReduplex: autoReduplex)
        case .duplexFinished(let summary, let reduplexed):
            setStatus(StatusText.summaryLine(summary))
            if reduplexed { self.reduplexed(summary) }
        case .memoryLost(let fault, let what):
            memoryLost(fault, what: what)
        case .scrubFailed(let text):
            logger.error("\(text)", metadata: ["mirrord_state": "failed"])
            setStatus(text)
        case .spareHostLost(let reason, let duringSync, let unreachable):
            spareHostLost(reason: reason, duringSync: duringSync, unreachable: unreachable)
        case .reduplexRefused(let why):
            logger.warning("reduplex: \(why)", metadata: ["mirrord_state": "\(serviceState.rawValue)"])
        }
    }

    /// `mirrord takeover` runs the machine from committed `epoch` of `source`: the journal entry
    /// (`EPOCH`, `FRAMES_REPLAYED`, `TAKEOVER_MS`), and `READY=1` with the status line, as the
    /// first duplex's start sends it otherwise.
    func tookOver(epoch: UInt64, framesReplayed: Int, milliseconds: Double, source: String) {
        let ms = format(milliseconds, 1)
        logger.notice(
            "took over from epoch \(epoch) of \(source): \(framesReplayed) frames replayed from the journal, CPUs running \(ms) ms after the takeover began (its command, or its request); simplex (a duplex follows to memory.spare, if set)",
            metadata: [
                "mirrord_state": "simplex", "message_id": "\(MessageID.tookOver.rawValue)", "epoch": "\(epoch)",
                "frames_replayed": "\(framesReplayed)", "takeover_ms": "\(ms)",
            ])
        let status =
            "took over from epoch \(epoch) of \(source) (\(framesReplayed) frames replayed, \(ms) ms); simplex"
        becomeReady(status: status)
    }

    /// Journal fields of `fault`.
    private func fields(_ fault: ModuleFault, state: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "mirrord_state": "\(state)", "module": "\(fault.module.rawValue)",
            "fault_kind": "\(fault.kind.rawValue)",
        ]
        if let frame = fault.frame { metadata["frame"] = "\(frame)" }
        return metadata
    }

    /// A correctable error, counted (`count` within the window); a warning with `MESSAGE_ID` when it
    /// makes the module count as failing.
    func correctable(_ fault: ModuleFault, count: Int, limit: Int, failing: Bool) {
        var metadata = fields(fault, state: serviceState.rawValue)
        metadata["correctable_errors"] = "\(count)"
        if failing {
            metadata["message_id"] = "\(MessageID.moduleFailed.rawValue)"
            logger.warning(
                "predictive failure: \(fault.module.rawValue) module had \(count) correctable errors within the window (limit \(limit)); treating it as failing",
                metadata: metadata)
        } else {
            logger.notice(
                "\(fault) (\(count) within the window, limit \(limit == 0 ? "none" : String(limit)))",
                metadata: metadata)
        }
    }

    /// The active module failed and the machine now runs simplex on the former spare.
    func failedOver(_ fault: ModuleFault, blackoutMicroseconds: UInt64, targetMicroseconds: UInt64) {
        var metadata = fields(fault, state: "simplex")
        metadata["message_id"] = "\(MessageID.failover.rawValue)"
        metadata["failover_blackout_usec"] = "\(blackoutMicroseconds)"
        metadata["blackout_usec"] = "\(blackoutMicroseconds)"
        logger.critical(
            "failover: active module failed (\(fault.what)); the CPUs and DMA run on the former spare after a \(blackoutMicroseconds) µs blackout; nothing lost; running simplex",
            metadata: metadata)
        setStatus(
            "simplex: active module failed (\(fault.what)); running on the former spare; replace the failed module")
        if targetMicroseconds > 0 && blackoutMicroseconds > targetMicroseconds {
            logger.warning(
                "the failover's blackout (\(blackoutMicroseconds) µs) exceeded duplex.blackout_target (\(targetMicroseconds) µs): a CPU thread was slow to stop on a busy host",
                metadata: ["mirrord_state": "simplex", "blackout_usec": "\(blackoutMicroseconds)"])
        }
    }

    /// The spare failed (or is predicted to) and was removed: the machine runs simplex.
    func spareRemoved(_ fault: ModuleFault, duringDuplex: Bool, state: LifecycleState) {
        var metadata = fields(fault, state: "simplex")
        metadata["message_id"] = "\(MessageID.moduleFailed.rawValue)"
        let when = duringDuplex ? "during the duplex (aborted; never duplexed)" : "while \(state.rawValue)"
        logger.error(
            "spare module failed \(when): \(fault.what); lockstep off, spare removed; running simplex",
            metadata: metadata)
        setStatus("simplex: spare module failed (\(fault.what)); replace the spare module")
    }

    /// The scrub found the modules different: the spare is suspect and is duplexed anew.
    func spareSuspect(_ result: DuplexSummary.Verify, autoReduplex: Bool) {
        let first = result.firstMismatches.prefix(8).map(String.init).joined(separator: ", ")
        let next =
            autoReduplex ? "re-duplexing from the active module" : "start a re-duplex (duplex.auto_reduplex is off)"
        let text =
            "lockstep lost: \(result.mismatches) frames differ between active and spare (first: \(first)); spare suspect: \(next)"
        logger.error(
            "\(text)",
            metadata: [
                "mirrord_state": "simplex", "verify_mismatches": "\(result.mismatches)",
                "module": "spare", "message_id": "\(MessageID.verifyFailed.rawValue)",
            ])
        setStatus(autoReduplex ? text : "simplex: \(text)")
    }

    /// A replacement spare was installed.
    func spareInstalled(autoReduplex: Bool) {
        logger.notice(
            "replacement spare module installed; \(autoReduplex ? "duplexing it now" : "start a re-duplex (duplex.auto_reduplex is off)")",
            metadata: [
                "mirrord_state": "simplex", "module": "spare", "message_id": "\(MessageID.spareInstalled.rawValue)",
            ])
        if !autoReduplex {
            setStatus("simplex: replacement spare installed; start a re-duplex (duplex.auto_reduplex is off)")
        }
    }

    /// A duplex after simplex ended duplexed.
    func reduplexed(_ summary: DuplexSummary) {
        // A spare on another host level again: its own entry says so (replicating, resynchronised).
        guard summary.isDuplexed else { return }
        logger.notice(
            "re-duplexed: active and spare in lockstep again; fault tolerant",
            metadata: [
                "mirrord_state": "duplexed", "message_id": "\(MessageID.reduplexed.rawValue)",
                "blackout_usec": "\(summary.blackout?.durationMicroseconds ?? 0)",
            ])
    }

    /// Nothing is left to run on: `what` was lost.
    func memoryLost(_ fault: ModuleFault, what: String) {
        var metadata = fields(fault, state: "failed")
        metadata["message_id"] = "\(MessageID.memoryLost.rawValue)"
        logger.critical("memory lost: \(what)", metadata: metadata)
        setStatus("failed: \(what)")
    }

    /// A fault the pair's state makes moot (a module already removed), or a notice of a module
    /// predicted to fail while nothing can be done.
    func faultNoted(_ fault: ModuleFault) {
        let state = serviceState.rawValue
        logger.warning("\(fault) (state \(state): nothing to do)", metadata: fields(fault, state: state))
    }
}
