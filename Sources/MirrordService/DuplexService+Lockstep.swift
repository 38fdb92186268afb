import Logging
import MirrorCore
import MirrorEmulation
import Synchronization

/// Between duplexes: the steady loop that scrubs while duplexed and answers faults, the operator
/// and the ticks until a duplex is due or the service ends.
extension DuplexService {
    // MARK: - Between duplexes

    /// What the steady loop asks for.
    enum Next {
        case reduplex
        case end(End)
    }

    /// Scrubs while duplexed, answers faults and the operator, until a duplex is due or the end.
    func steady(on thread: ServiceThread, events: inout AsyncStream<ServiceEvent>.AsyncIterator) async -> Next {
        if record.withLock({ $0.state }) == .duplexed && mode == .daemon && lifecycle.duplexes == 1 {
            logger.info(
                "duplexed: active and spare in lockstep until stopped; scrubbing memory every \(reporter.watchdog.tick)",
                metadata: ["mirrord_state": "duplexed"])
        }
        let ticker = Task { [eventSink, reporter] in
            while !Task.isCancelled {
                try? await Task.sleep(for: reporter.watchdog.tick)
                eventSink.yield(.tick)
            }
        }
        defer { ticker.cancel() }
        var next = 0
        while let event = await events.next() {
            // What each event changed (and, on ticks, the time in lockstep) reaches the file.
            defer { publishMetrics() }
            let state = record.withLock { $0.state }
            switch event {
            case .tick:
                reporter.watchdog.progress()
                // Faults first: a frame a fault lost differs, and is the fault's to answer.
                if let end = handleFaults() { return .end(end) }
                guard record.withLock({ $0.state }) == .duplexed else { continue }
                switch await scrubSlice(from: &next, on: thread) {
                case .holds: continue
                case .differs(let result):
                    if let end = handleFaults() { return .end(end) }
                    guard record.withLock({ $0.state }) == .duplexed else { continue }
                    // The active module is authoritative: the spare is suspect and duplexed anew.
                    machine.setLockstep(false)
                    machine.setDMADualWrite(false)
                    let auto = configuration.current.faultTolerance.autoReduplex
                    reporter.spareSuspect(result, autoReduplex: auto)
                    record.withLock { $0.state = .simplex }
                    if auto, let next = readyToReduplex() { return next }
                case .failed(let error):
                    reporter.scrubFailed(error)
                    record.withLock { $0.state = .failed }
                    return .end(.failed(reporter.status))
                }
            case .faultsReported:
                if let end = handleFaults() { return .end(end) }
            case .inject(let fault):
                _ = raise(fault)
            case .replaceSpare:
                guard let machine = machine as? any FaultTolerantHardware, !machine.hasSpare else {
                    logger.warning(
                        "replace-spare: a spare module is installed already",
                        metadata: ["mirrord_state": "\(state.rawValue)"])
                    continue
                }
                do {
                    try machine.installSpare()
                } catch {
                    logger.error(
                        "cannot install the replacement spare: \(error)",
                        metadata: ["mirrord_state": "\(state.rawValue)"])
                    continue
                }
                correctable.withLock { $0.spareReplaced() }
                let auto = configuration.current.faultTolerance.autoReduplex
                reporter.spareInstalled(autoReduplex: auto)
                record.withLock { $0.sparesInstalled += 1 }
                if auto, let next = readyToReduplex() { return next }
                replacementPending.store(false, ordering: .releasing)
            case .drillRaised:
                // After the drill's own events: its faults have been answered by now.
                if let end = handleFaults() { return .end(end) }
                drillRaised.store(true, ordering: .releasing)
            case .reduplex:
                let installed = (machine as? any FaultTolerantHardware)?.hasSpare ?? true
                if state == .simplex && installed, let next = readyToReduplex() { return next }
                logger.warning(
                    "reduplex: \(installed ? "the pair is \(state.rawValue), not simplex" : "no spare module is installed")",
                    metadata: ["mirrord_state": "\(state.rawValue)"])
            }
            if onceIsDone { return .end(.done) }
        }
        // The stream ended: a graceful shutdown.
        return .end(.stopped(stateName, logged: false))
    }

    /// Answers every fault reported so far (one may be queued behind this request), then says
    /// whether a duplex can start: a spare is installed and nothing ended the service.
    func readyToReduplex() -> Next? {
        if let end = handleFaults() { return .end(end) }
        let installed = (machine as? any FaultTolerantHardware)?.hasSpare ?? true
        return installed && record.withLock({ $0.state }) == .simplex ? .reduplex : nil
    }

    /// How a scrub slice went.
    enum ScrubOutcome {
        case holds
        case differs(DuplexSummary.Verify)
        case failed(any Error)
    }

    /// Compares the next slice of memory on the service's thread.
    func scrubSlice(from next: inout Int, on thread: ServiceThread) async -> ScrubOutcome {
        let frames = machine.geometry.frameCount
        let range = next..<min(next + min(frames, Self.scrubSliceFrames), frames)
        next = range.upperBound == frames ? 0 : range.upperBound
        let engine = self.engine
        switch await thread.run({ Result { try engine.scrub(frames: range) } }) {
        case .success(let result):
            return reporter.scrubbed(result, frames: range, sweepEnded: range.upperBound == frames)
                ? .differs(result) : .holds
        case .failure(let error):
            return .failed(error)
        }
    }
}
