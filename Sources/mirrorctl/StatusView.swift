/// A `status` reply, read for people.
struct StatusView {
    let reply: [String: Any]

    init(_ reply: [String: Any]) { self.reply = reply }

    private var progress: [String: Any] { reply["progress"] as? [String: Any] ?? [:] }
    private var lifecycle: [String: Any] { reply["lifecycle"] as? [String: Any] ?? [:] }

    /// The pair's state: duplexing, duplexed, simplex, failed.
    var state: String { reply["state"] as? String ?? "?" }
    /// The engine's state.
    var engineState: String { progress["engine_state"] as? String ?? "?" }
    /// Duplexes the daemon has started.
    var duplexes: Int { lifecycle["duplexes"] as? Int ?? 0 }
    /// Whether the pair is duplexed.
    var isDuplexed: Bool { state == "duplexed" }
    /// The current pass, if the engine has made one.
    var pass: Int? { progress["pass"] as? Int }
    /// Frames done and in all of a full copy or verify in progress.
    var phase: (done: Int, total: Int)? {
        guard let done = progress["phase_frames_done"] as? Int, let total = progress["phase_frames_total"] as? Int,
            total > 0
        else { return nil }
        return (done, total)
    }

    /// The passes of the running (or last) duplex, each as one line, by pass number.
    var passLines: [(pass: Int, line: String)] {
        (progress["passes"] as? [[String: Any]] ?? []).compactMap { pass in
            guard let number = pass["pass"] as? Int else { return nil }
            return (
                number,
                Self.line(
                    pass, threshold: progress["threshold_frames"] as? Int ?? 0,
                    target: progress["target_us"] as? Int ?? 0)
            )
        }
    }

    /// One line about the last pass.
    var passLine: String? { passLines.last?.line }

    private static func line(_ pass: [String: Any], threshold: Int, target: Int) -> String {
        var line =
            "pass \(pass["pass"] as? Int ?? 0): \(pass["dirty_frames"] as? Int ?? 0) dirty frames copied, \(pass["dirty_rate_fps"] as? Int ?? 0) frames/s dirtied; \(pass["remaining_dirty_frames"] as? Int ?? 0) dirty now, threshold \(threshold)"
        if let predicted = pass["predicted_blackout_us"] as? Int {
            line += "; blackout \(predicted) µs predicted"
            if target > 0 { line += " (target \(target) µs)" }
        }
        if let throttle = pass["throttle_percent"] as? Double, throttle > 0 {
            line += "; throttle \(Int(throttle.rounded()))%"
        }
        return line
    }

    /// The whole status, a few lines.
    var text: String {
        var lines = ["state: \(state) (engine: \(engineState))", "status: \(reply["status"] as? String ?? "")"]
        if let passLine { lines.append(passLine) }
        var blackout = ""
        if let last = progress["last_blackout_us"] as? Int { blackout = "last blackout \(last) µs" }
        if let seconds = progress["lockstep_s"] as? Double {
            blackout += (blackout.isEmpty ? "" : "; ") + "in lockstep for \(String(format: "%.1f", seconds)) s"
        }
        if !blackout.isEmpty { lines.append(blackout) }
        let faults = (lifecycle["faults"] as? [Any])?.count ?? 0
        let failovers = (lifecycle["failovers"] as? [Any])?.count ?? 0
        lines.append(
            "modules: spare \(reply["spare_installed"] as? Bool == true ? "installed" : "removed"); \(faults) faults, \(failovers) failovers, \(lifecycle["duplexed"] as? Int ?? 0) of \(lifecycle["duplexes"] as? Int ?? 0) duplexes duplexed"
        )
        if let configuration = reply["configuration"] as? [String: String] {
            lines.append(
                "configuration: "
                    + configuration.keys.sorted().map { "\($0) = \(configuration[$0]!)" }.joined(separator: ", "))
        }
        lines.append("mirrord \(reply["version"] as? String ?? "?")")
        return lines.joined(separator: "\n")
    }
}
