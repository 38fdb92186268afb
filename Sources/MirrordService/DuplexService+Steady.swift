import Logging
import MirrorCore

/// Between duplexes: the steady loop that scrubs while duplexed and answers faults, the operator
/// and the ticks until a duplex is due or the service ends.
extension DuplexService {
    /// Scrubs while duplexed, answers faults and the operator, until a duplex is due or the end.
    func steady(on thread: ServiceThread, events: inout AsyncStream<ServiceEvent>.AsyncIterator) async -> Next {
        if state == .duplexed && mode == .daemon && lifecycle.duplexes == 1 {
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
        var slice = 0
        while let event = await events.next() {
            // What each event changed (and, on ticks, the time in lockstep) reaches the file.
            defer { publishMetrics() }
            if let next = await answer(event, scrubbing: &slice, on: thread) { return next }
            if onceIsDone { return .end(.done) }
        }
        // The stream ended: a graceful shutdown.
        return .end(.stopped(stoppedStateName, logged: false))
    }

    /// Answers one event of the steady loop; returns what comes next, if it changes.
    private func answer(_ event: ServiceEvent, scrubbing slice: inout Int, on thread: ServiceThread) async -> Next? {
        switch event {
        case .tick:
            reporter.watchdog.progress()
            // Faults first: a frame a fault lost differs, and is the fault's to answer.
            if let end = handleFaults() { return .end(end) }
            guard state == .duplexed else { return nil }
            switch await scrubSlice(from: &slice, on: thread) {
            case .holds:
                return nil
            case .differs(let result):
                if let end = handleFaults() { return .end(end) }
                // The active module is authoritative: the spare is suspect and duplexed anew.
                let auto = configuration.current.faultTolerance.autoReduplex
                return apply(.scrubDiffered(result, autoReduplex: auto))
            case .failed(let error):
                return apply(.scrubFailed("\(error)"))
            }
        case .faultsReported:
            return handleFaults().map { .end($0) }
        case .inject(let fault):
            _ = raise(fault)
            return nil
        case .replaceSpare:
            guard let machine = machine as? any FaultTolerantHardware, !machine.hasSpare else {
                logger.warning(
                    "replace-spare: a spare module is installed already", metadata: ["mirrord_state": "\(state.name)"])
                return nil
            }
            do {
                try machine.installSpare()
            } catch {
                logger.error(
                    "cannot install the replacement spare: \(error)", metadata: ["mirrord_state": "\(state.name)"])
                return nil
            }
            return apply(.spareInstalled(autoReduplex: configuration.current.faultTolerance.autoReduplex))
        case .drillRaised:
            // After the drill's own events: its faults have been answered by now.
            if let end = handleFaults() { return .end(end) }
            apply(.drillRaised)
            return nil
        case .reduplex:
            return apply(.reduplexRequested(hasSpare: hasSpareToDuplex))
        case .replicationEnded(let end):
            if end.reason != .stopped { engine.stopToken.reset() }
            return apply(.replicationEnded(end))
        }
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
            let differs = reporter.scrubbed(
                result, frames: range, sweepEnded: range.upperBound == frames, now: clock.nanoseconds())
            return differs ? .differs(result) : .holds
        case .failure(let error):
            return .failed(error)
        }
    }
}
