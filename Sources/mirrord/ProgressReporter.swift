import Logging
import MirrorCore

/// Turns the engine's progress events into log entries: one line for people, and structured
/// metadata whose names are the journal fields (`MIRRORD_STATE`, `DUPLEX_PASS`, `DIRTY_FRAMES`,
/// `COPIED_FRAMES`, `THRESHOLD_FRAMES`, `DURATION_USEC`, `BLACKOUT_USEC`, `VERIFY_MISMATCHES`).
struct ProgressReporter: Sendable {
    let logger: Logger
    let geometry: MemoryGeometry

    /// Logs the start of a duplex with the configuration in force.
    func starting(configuration: MirrordConfiguration, backend: String) {
        let w = configuration.workload
        logger.info(
            "duplex starting: \(ByteCount.format(geometry.byteCount)) (\(geometry.frameCount) frames) on \(backend); workload \(w.pattern.rawValue) on \(w.cpus) CPUs at \(w.rate), DMA at \(configuration.dma.rate) (dual-write \(configuration.dma.dualWrite ? "on" : "OFF")); threshold \(configuration.duplex.thresholdFrames) frames, at most \(configuration.duplex.maxPasses) passes",
            metadata: ["mirrord_state": "idle", "threshold_frames": "\(configuration.duplex.thresholdFrames)"])
    }

    /// Handles one event (called on the engine's thread).
    func observe(_ event: DuplexEvent) {
        switch event {
        case .stateChanged(_, let to):
            logger.debug("state \(to.rawValue)", metadata: ["mirrord_state": "\(to.rawValue)"])
        case .progress:
            break
        case .fullCopyCompleted(let copy):
            logger.info(
                "full copy: \(ByteCount.format(copy.bytes)) in \(milliseconds(copy.durationMicroseconds)) ms (\(format(copy.gigabytesPerSecond, 2)) GB/s)",
                metadata: ["mirrord_state": "full_copy", "copied_frames": "\(geometry.frameCount)",
                           "duration_usec": "\(copy.durationMicroseconds)"])
        case .passCompleted(let pass, let threshold):
            let share = Double(pass.dirtyFrames) * 100 / Double(geometry.frameCount)
            logger.info(
                "pass \(pass.pass): \(pass.dirtyFrames) dirty frames (\(format(share, 2))%) copied in \(milliseconds(pass.durationMicroseconds)) ms, \(Int(pass.dirtyRateFramesPerSecond)) frames/s dirtied; \(pass.remainingDirtyFrames) dirty now, threshold \(threshold)",
                metadata: ["mirrord_state": "passes", "duplex_pass": "\(pass.pass)", "dirty_frames": "\(pass.dirtyFrames)",
                           "copied_frames": "\(pass.copiedFrames)", "threshold_frames": "\(threshold)",
                           "duration_usec": "\(pass.durationMicroseconds)"])
        case .passesEnded(let reason, let dirty):
            logger.info("passes ended (\(reason.rawValue)) with \(dirty) dirty frames; entering the blackout",
                        metadata: ["mirrord_state": "passes", "dirty_frames": "\(dirty)"])
        case .blackoutCompleted(let b):
            logger.info(
                "blackout: \(b.durationMicroseconds) µs (stop \(b.stopMicroseconds) µs, final copy of \(b.finalFrames) frames \(b.finalCopyMicroseconds) µs, verify \(b.verifyMicroseconds) µs)",
                metadata: ["mirrord_state": "blackout", "copied_frames": "\(b.finalFrames)",
                           "blackout_usec": "\(b.durationMicroseconds)", "duration_usec": "\(b.durationMicroseconds)"])
        case .verifyCompleted(let v):
            logger.info(
                "verify: \(v.framesChecked) frames compared, \(v.mismatches) differ (\(v.candidates) looked at twice) in \(milliseconds(v.durationMicroseconds)) ms",
                metadata: ["mirrord_state": "verify", "verify_mismatches": "\(v.mismatches)",
                           "duration_usec": "\(v.durationMicroseconds)"])
        case .finished(let summary):
            let metadata: Logger.Metadata = [
                "mirrord_state": "\(summary.finalState.rawValue)", "verify_mismatches": "\(summary.verify?.mismatches ?? 0)",
                "duration_usec": "\(summary.totalMicroseconds)",
            ]
            if summary.isDuplexed {
                logger.info("\(summary.message)", metadata: metadata)
            } else {
                logger.error("duplex failed: \(summary.message)", metadata: metadata)
            }
        }
    }

    private func milliseconds(_ micros: UInt64) -> String { format(Double(micros) / 1000, 1) }
}

/// `value` with `digits` digits after the point, without Foundation.
func format(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        if digits == 0 { text = String(text[..<dot]) }
    }
    return text
}
