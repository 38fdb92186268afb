import Foundation
import MirrordControl

/// What `mirrorctl watch` prints: a line per state change and per pass, each written at once
/// (never held in a buffer when piped); on a terminal the full copy's and the verify's progress
/// redraw one bar in place.
struct WatchView {
    /// Standard output is a terminal: the progress bar is drawn.
    let terminal: Bool
    private var lastState: (ServiceStateName, EngineState)?
    /// The last status line printed while replicating (it moves on once a second, epoch by epoch).
    private var lastEpochStatus: String?
    private var lastPass: Int?
    private var lastDuplexes = 0
    private var barShown = false
    private var phaseStart: (Date, Int)?

    /// A view that has shown nothing yet.
    init(terminal: Bool) { self.terminal = terminal }

    /// Shows what changed since the last look: the first look prints the state at once.
    mutating func show(_ view: StatusView) {
        let passes = view.passLines
        if view.duplexes != lastDuplexes {
            lastDuplexes = view.duplexes
            lastPass = nil  // a new duplex numbers its passes from 1
        }
        for (pass, line) in passes where pass > (lastPass ?? 0) {
            clearBar()
            emit("\(timestamp()) \(line)")
            lastPass = pass
        }
        // Passes first: a look that finds the duplex over still shows how it got there.
        let state = (view.reply.state, view.reply.progress.engineState)
        if lastState.map({ $0 != state }) ?? true {
            clearBar()
            emit("\(timestamp()) \(view.reply.state.rawValue): \(view.reply.status)")
            lastState = state
            lastEpochStatus = view.reply.status
            phaseStart = nil
        } else if view.reply.state == .replicating && view.reply.status != lastEpochStatus {
            // The epochs: a line each time the status follows them.
            emit("\(timestamp()) \(view.reply.state.rawValue): \(view.reply.status)")
            lastEpochStatus = view.reply.status
        }
        if let phase = view.phase, terminal {
            if phaseStart == nil { phaseStart = (Date(), phase.done) }
            drawBar(view.reply.progress.engineState.rawValue, phase)
        }
    }

    /// Clears the progress bar, before the last words or the exit.
    mutating func finish() { clearBar() }

    /// Writes `line` to standard output now: `print` would keep it in stdio's buffer while
    /// standard output is a pipe, and `mirrorctl watch | head` would show nothing on a steady daemon.
    private func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private mutating func drawBar(_ name: String, _ phase: (done: Int, total: Int)) {
        let share = Double(phase.done) / Double(phase.total)
        let width = 30
        let filled = Int(share * Double(width))
        var rate = ""
        if let (start, first) = phaseStart {
            let seconds = Date().timeIntervalSince(start)
            if seconds > 0.05, phase.done > first {
                let perSecond = Double(phase.done - first) / seconds
                rate = String(
                    format: " %.0f frames/s, %.1f s left", perSecond, Double(phase.total - phase.done) / perSecond)
            }
        }
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardOutput.write(Data("\r\(name) [\(bar)] \(phase.done)/\(phase.total)\(rate)\u{1B}[K".utf8))
        barShown = true
    }

    private mutating func clearBar() {
        guard barShown else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
        barShown = false
    }

    private func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        return formatter.string(from: Date())
    }
}
