import Foundation
import MirrordControl

/// A `status` reply, read for people.
struct StatusView {
    /// The daemon's reply.
    let reply: StatusReply

    /// The view of `reply`.
    init(_ reply: StatusReply) { self.reply = reply }

    private var progress: ProgressReport { reply.progress }

    /// Duplexes the daemon has started.
    var duplexes: Int { reply.lifecycle.duplexes }

    /// Frames done and in all of a full copy or verify in progress.
    var phase: (done: Int, total: Int)? {
        guard let done = progress.phaseFramesDone, let total = progress.phaseFramesTotal, total > 0 else { return nil }
        return (done, total)
    }

    /// The passes of the running (or last) duplex, each as one line, by pass number.
    var passLines: [(pass: Int, line: String)] {
        progress.passes.map {
            ($0.pass, Self.line($0, threshold: progress.thresholdFrames, target: progress.targetMicroseconds))
        }
    }

    /// One line about the last pass.
    var passLine: String? { passLines.last?.line }

    private static func line(_ pass: PassReport, threshold: Int, target: UInt64) -> String {
        var line =
            "pass \(pass.pass): \(pass.dirtyFrames) dirty frames copied, \(pass.dirtyRate) frames/s dirtied; \(pass.remainingDirtyFrames) dirty now, threshold \(threshold)"
        if let predicted = pass.predictedBlackoutMicroseconds {
            line += "; blackout \(predicted) µs predicted"
            if target > 0 { line += " (target \(target) µs)" }
        }
        if pass.throttlePercent > 0 { line += "; throttle \(Int(pass.throttlePercent.rounded()))%" }
        return line
    }

    /// The pair's state, and while a duplex runs the engine's phase: `duplexing (pass 3)`,
    /// `duplexing (full copy)`. Otherwise the state alone: the engine's last state (`duplexed`
    /// after a duplex that a failover since left simplex) would contradict it.
    var stateLine: String {
        guard reply.state == .duplexing else { return reply.state.rawValue }
        return "\(reply.state.rawValue) (\(Self.phaseName(progress.engineState, pass: progress.pass)))"
    }

    /// The engine's phase in a few words. Idle, duplexed or failed, the engine has not begun this
    /// duplex yet (it still shows how the last one ended): the duplex is starting.
    private static func phaseName(_ state: EngineState, pass: Int?) -> String {
        switch state {
        case .idle, .duplexed, .replicating, .failed: "starting"
        case .tracking: "switching dirty tracking on"
        case .fullCopy: "full copy"
        case .passes: pass.map { "pass \($0)" } ?? "passes"
        case .blackout: "blackout"
        case .verify: "verify"
        case .firstEpoch: "first epoch"
        }
    }

    /// The whole status, a few lines.
    var text: String {
        var lines = ["state: \(stateLine)", "status: \(reply.status)"]
        if let passLine { lines.append(passLine) }
        var blackout = ""
        if let last = progress.lastBlackoutMicroseconds { blackout = "last blackout \(last) µs" }
        if let seconds = progress.lockstepSeconds {
            blackout += (blackout.isEmpty ? "" : "; ") + "in lockstep for \(String(format: "%.1f", seconds)) s"
        }
        if !blackout.isEmpty { lines.append(blackout) }
        let lifecycle = reply.lifecycle
        lines.append(
            "modules: spare \(reply.spareInstalled ? "installed" : "removed"); \(lifecycle.faults.count) faults, \(lifecycle.failovers.count) failovers, \(lifecycle.duplexed) of \(lifecycle.duplexes) duplexes duplexed"
        )
        if !reply.configuration.isEmpty {
            lines.append(
                "configuration: "
                    + reply.configuration.keys.sorted().map { "\($0) = \(reply.configuration[$0]!)" }.joined(
                        separator: ", "))
        }
        lines.append("mirrord \(reply.version)")
        return lines.joined(separator: "\n")
    }
}
