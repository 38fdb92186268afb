import MirrorCore

/// The one-line `STATUS=` texts `systemctl status mirrord` shows, one per state change and pass.
enum StatusText {
    /// Replication's status: `replicating to nbd://…: epoch 5123 committed, lag 4 ms (1 epoch
    /// behind), link 1.9 GB/s, pause 310 µs`.
    static func replicating(_ report: EpochReport, spare: String) -> String {
        let behind = report.epochsBehind == 1 ? "1 epoch" : "\(report.epochsBehind) epochs"
        return
            "replicating to \(spare): epoch \(report.epoch) committed, lag \(format(Double(report.lagMicroseconds) / 1000, 1)) ms "
            + "(\(behind) behind), link \(format(report.linkBytesPerSecond / 1e9, 2)) GB/s, pause \(report.pauseMicroseconds) µs"
    }

    /// The status for `event`, or nil when the event does not change it.
    static func forEvent(_ event: DuplexEvent, geometry: MemoryGeometry) -> String? {
        switch event {
        case .stateChanged(_, let to):
            switch to {
            // Said by the events around them.
            case .idle, .passes, .blackout, .duplexed, .replicating, .failed: return nil
            case .tracking: return "dirty tracking on"
            case .fullCopy:
                return "full copy of \(geometry.frameCount) frames (\(ByteCount.format(geometry.byteCount)))"
            case .verify: return "verify: comparing \(geometry.frameCount) frames in lockstep"
            case .firstEpoch: return "first epoch: committing the final frames on the spare host"
            }
        case .progress, .blackoutCompleted, .verifyCompleted, .firstEpochCommitted, .finished:
            // A finished duplex is reported by the service, with the state it leaves.
            return nil
        case .fullCopyCompleted(let copy):
            return "full copy done in \(copy.durationMicroseconds / 1000) ms; pass 1 next"
        case .passCompleted(let pass, let threshold, let target):
            let share = format(Double(pass.dirtyFrames) * 100 / Double(geometry.frameCount), 1)
            var text = "pass \(pass.pass): \(pass.dirtyFrames) dirty frames (\(share)%), threshold \(threshold)"
            if pass.dirtyRateFramesPerSecond >= 1 {
                text += "; dirtied at \(rateText(pass.dirtyRateFramesPerSecond)) frames/s"
            }
            if let predicted = pass.predictedBlackoutMicroseconds {
                text +=
                    target > 0
                    ? "; blackout \(predicted) µs predicted, target \(target) µs"
                    : "; blackout \(predicted) µs predicted"
            }
            if pass.throttlePercent > 0 { text += "; throttle \(throttleText(pass.cpuThrottlePercent))" }
            return text
        case .throttleChanged:
            return nil
        case .passesEnded(let reason, let dirty, let predicted):
            let prediction = predicted.map { ", \($0) µs predicted" } ?? ""
            return "blackout: final copy of \(dirty) frames (passes ended: \(reason.rawValue)\(prediction))"
        }
    }

    /// The status line of the service in `state`: it begins with the state's name (a `detail`
    /// that already does, such as "duplexed; verified …", is taken as it is), so that the line
    /// and the state can never disagree.
    static func line(state: ServiceState.Name, detail: String) -> String {
        let name = state.rawValue
        if detail.hasPrefix(name), let next = detail.dropFirst(name.count).first,
            next == ":" || next == ";" || next == " "
        {
            return detail
        }
        return "\(name): \(detail)"
    }

    /// A rate in frames per second, short: `850`, `12.3k`, `4.1M`.
    static func rateText(_ perSecond: Double) -> String {
        if perSecond >= 1e6 { return format(perSecond / 1e6, 1) + "M" }
        if perSecond >= 1e3 { return format(perSecond / 1e3, 1) + "k" }
        return "\(Int(perSecond.rounded()))"
    }

    /// The throttle of each CPU in percent: one figure when every CPU has the same.
    static func throttleText(_ cpuPercent: [Double]) -> String {
        guard let first = cpuPercent.first else { return "0%" }
        if cpuPercent.allSatisfy({ $0 == first }) { return "\(Int(first.rounded()))%" }
        return cpuPercent.map { "\(Int($0.rounded()))%" }.joined(separator: "/")
    }

    /// The longest `STATUS=` text sent, in bytes. systemd drops a whole notification past a few
    /// kilobytes (and with it a `READY=1` in the same message), so every status is cut to this.
    static let maximumBytes = 1_024

    /// `text` fit for one `STATUS=` line: line breaks (which would end the field) turned into
    /// spaces, and cut to ``maximumBytes`` with an ellipsis.
    static func bounded(_ text: String) -> String {
        var line = text.contains(where: \.isNewline) ? String(text.map { $0.isNewline ? " " : $0 }) : text
        guard line.utf8.count > maximumBytes else { return line }
        while line.utf8.count > maximumBytes - 3 { line.removeLast() }
        return line + "…"
    }

    /// The status of a finished duplex.
    static func summaryLine(_ summary: DuplexSummary) -> String {
        if summary.isDuplexed {
            return
                "duplexed; verified \(summary.verify?.framesChecked ?? 0) frames, blackout \(summary.blackout?.durationMicroseconds ?? 0) µs"
        }
        if summary.outcome == .failed(.stopped) {
            return "stopped in state \(summary.failedIn?.rawValue ?? "idle")"
        }
        return "failed: \(summary.message)"
    }
}
