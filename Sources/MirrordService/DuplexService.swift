import Logging
import MirrorCore
import MirrorEmulation
import MirrorSystemd
import MirrordConfig
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's main service: starts the emulated machine, duplexes it on a thread of its own,
/// then either returns (`--once`) or keeps the pair fault tolerant until a graceful shutdown:
/// scrubbing memory slice by slice while duplexed, failing over to the spare when the active
/// module fails, running simplex when a module is gone, and duplexing a replacement spare.
///
/// The life cycle is `duplexing → duplexed → simplex → duplexing → …` (``LifecycleState``); the
/// rules that map a fault to an action are ``FaultResponse``. A graceful shutdown (SIGTERM,
/// SIGINT) announces `STOPPING=1` and asks the engine to stop at its next safe point; a blackout
/// already entered is completed, so the CPUs are never left stopped. The last log entry says
/// which state mirrord stopped in.
public final class DuplexService: Service, Sendable {
    /// Whether the process ends after one duplex.
    public enum Mode: Sendable {
        /// Duplex once and return (after a `[fault]` drill's fault has been handled, when one is set).
        case once
        /// Duplex, then stay fault tolerant until shut down.
        case daemon
    }

    /// Why a daemon ends with a failure status (so that `Restart=on-failure` acts).
    public struct DuplexFailed: Error, CustomStringConvertible {
        /// What failed.
        public var description: String
    }

    /// Frames compared per scrub tick (256 MiB of 4 KiB frames).
    static let scrubSliceFrames = 65_536

    /// The engine that runs each duplex.
    public let engine: DuplexEngine
    private let machine: any ServiceMachine
    private let configuration: RunningConfiguration
    private let mode: Mode
    private let logger: Logger
    private let reporter: ProgressReporter
    private let result = Mutex<DuplexSummary?>(nil)
    private let startFailed = Mutex(false)
    private let record = Mutex(LifecycleRecord())
    private let correctable: Mutex<CorrectableErrorLedger>
    private let shuttingDown = Atomic<Bool>(false)
    private let stoppedByRequest = Atomic<Bool>(false)
    /// A fault on the active module that waits for the running duplex to end (a predicted failure).
    private let pendingFailover = Mutex<ModuleFault?>(nil)
    /// Whether the `[fault]` drill's faults have been raised (or its moment has passed without
    /// coming), and whether a replacement spare is still to be duplexed: `--once` waits for both.
    private let drillRaised = Atomic<Bool>(false)
    private let replacementPending = Atomic<Bool>(false)
    private let metrics: MetricsTextfile?
    private let events: AsyncStream<ServiceEvent>
    private let eventSink: AsyncStream<ServiceEvent>.Continuation

    /// A service for `machine`, with the configuration in force and where progress goes.
    public init(machine: any ServiceMachine, configuration: RunningConfiguration, mode: Mode, logger: Logger,
                notifier: SystemdNotifier) {
        self.machine = machine
        self.configuration = configuration
        self.mode = mode
        self.logger = logger
        let current = configuration.current
        let engine = DuplexEngine(hardware: machine, policy: current.policy)
        self.engine = engine
        self.reporter = ProgressReporter(
            logger: logger, geometry: machine.geometry, notifier: notifier,
            hangAfterPass: current.hangAfterPass, stopToken: engine.stopToken)
        let tolerance = current.faultTolerance
        correctable = Mutex(CorrectableErrorLedger(limit: tolerance.correctableLimit, window: tolerance.correctableWindowNanoseconds))
        (events, eventSink) = AsyncStream.makeStream(of: ServiceEvent.self)
        metrics = current.metricsTextfile.isEmpty ? nil : MetricsTextfile(path: current.metricsTextfile, logger: logger)
    }

    /// Writes the metrics file (when one is configured) from the state now.
    private func publishMetrics() {
        metrics?.publish(lifecycle: lifecycle, progress: reporter.progress, summary: summary)
    }

    /// The summary of the last duplex, once one has ended.
    public var summary: DuplexSummary? { result.withLock { $0 } }

    /// What happened to the module pair so far.
    public var lifecycle: LifecycleRecord { record.withLock { $0 } }

    /// Whether the service could not start the machine (a thread refused): a resource the
    /// process lacks, not a failed duplex.
    public var couldNotStart: Bool { startFailed.withLock { $0 } }

    /// Whether the service ended on a graceful shutdown (SIGTERM, SIGINT).
    public var stoppedOnRequest: Bool { stoppedByRequest.load(ordering: .acquiring) }

    /// The last status text sent.
    public var status: String { reporter.status }

    /// Replaces the engine's status text.
    public func setStatus(_ text: String) { reporter.setStatus(text) }

    /// Puts a reload's outcome in front of the engine's status text (replacing an earlier
    /// reload's) and returns the status to send with `READY=1`.
    public func statusAfterReload(_ outcome: String) -> String { reporter.statusAfterReload(outcome) }

    // MARK: - The operator's actions

    /// Raises `fault` on the machine at once, as its hardware would (a drill): during a duplex too,
    /// which it then aborts if the fault is fatal to a module.
    public func inject(_ fault: ModuleFault) { _ = raise(fault) }

    /// Raises `fault`; returns why it could not be, logged too.
    func raise(_ fault: ModuleFault) -> String? {
        let state = record.withLock { $0.state.rawValue }
        let refusal: String
        if let machine = machine as? any FaultTolerantHardware {
            do {
                try machine.inject(fault)
                return nil
            } catch {
                refusal = error.message
            }
        } else {
            refusal = "backend \(machine.backendName) has no fault model"
        }
        logger.warning("cannot inject \(fault): \(refusal)", metadata: ["mirrord_state": "\(state)"])
        return refusal
    }

    /// Installs a replacement spare (after a module was removed); with `duplex.auto_reduplex` a
    /// duplex of it follows.
    public func replaceSpare() { eventSink.yield(.replaceSpare) }

    /// Starts a duplex of the installed spare while simplex.
    public func reduplex() { eventSink.yield(.reduplex) }

    /// Compares the next scrub slice now (while duplexed) instead of at the next tick.
    public func scrubNow() { eventSink.yield(.tick) }

    /// The engine's progress as its last events left it.
    var progress: LiveProgress { reporter.progress }

    /// The configuration in force.
    var runningConfiguration: MirrordConfiguration { configuration.current }

    /// The machine, for the control socket's status.
    var machineForControl: any ServiceMachine { machine }

    // MARK: - Running

    /// Starts the machine, duplexes, then (as a daemon, or while a drill runs) keeps the pair
    /// fault tolerant until a graceful shutdown.
    public func run() async throws {
        defer { machine.shutdown() }
        // Every thread the service needs is made now: the engine's (which then scrubs), the
        // CPUs', the DMA engine's. Nothing later depends on creating one.
        let thread: ServiceThread
        do {
            thread = try ServiceThread(name: "mirrord-engine")
            try machine.start()
        } catch {
            let text = "cannot start the machine: \(error)"
            logger.error("\(text)", metadata: ["mirrord_state": "idle"])
            reporter.notifier.fatal(status: text, errno: EAGAIN)
            let policy = configuration.current.policy
            var failed = DuplexSummary(backend: machine.backendName, geometry: machine.geometry,
                                       thresholdFrames: policy.thresholdFrames, policy: policy)
            failed.outcome = .failed(.hardwareError)
            failed.message = text
            failed.finalState = .failed
            failed.failedIn = .idle
            result.withLock { $0 = failed }
            startFailed.withLock { $0 = true }
            throw DuplexFailed(description: text)
        }
        defer { thread.stop() }
        reporter.starting(configuration: configuration.current, backend: machine.backendName)
        if let signal = StartupSignal.received {
            // Arrived after the start-up's check and before the service group's own handlers.
            logger.notice("\(signal) during start-up: stopping before the duplex", metadata: ["mirrord_state": "idle"])
            shuttingDown.store(true, ordering: .releasing)
            engine.stopToken.requestStop()
        }
        let faultTolerant = machine as? any FaultTolerantHardware
        faultTolerant?.setFaultDoorbell { [weak self] fault in self?.faultReported(fault) }
        drillRaised.store(!configuration.current.faultDrill.isArmed, ordering: .releasing)

        let end = await withGracefulShutdownHandler {
            await self.serve(on: thread)
        } onGracefulShutdown: {
            self.shuttingDown.store(true, ordering: .releasing)
            self.reporter.notifier.stopping(status: "stopping in state \(self.stateName)")
            self.engine.stopToken.requestStop()
            self.eventSink.finish()
        }
        eventSink.finish()
        switch end {
        case .done:
            return
        case .stopped(let state, let logged):
            stoppedByRequest.store(true, ordering: .releasing)
            if !logged { logger.info("stopped in state \(state)", metadata: ["mirrord_state": "\(state)"]) }
        case .failed(let text):
            reporter.notifier.fatal(status: reporter.status, errno: EIO)
            throw DuplexFailed(description: text)
        }
    }

    /// How serving ended.
    private enum End {
        /// `--once` is done (its summary says how the duplex went).
        case done
        /// A graceful shutdown, in this state (`logged`: the engine logged its own stop).
        case stopped(String, logged: Bool)
        /// The pair failed; the status says why.
        case failed(String)
    }

    /// The state the journal's last line names: the engine's while it runs, else the pair's.
    private var stateName: String {
        let state = record.withLock { $0.state }
        return state == .duplexing ? reporter.state.rawValue : state.rawValue
    }

    /// Duplexes, then waits for what comes next, until the end.
    private func serve(on thread: ServiceThread) async -> End {
        var iterator = events.makeAsyncIterator()
        while true {
            if let end = await duplex(on: thread) { return end }
            if onceIsDone { return .done }
            switch await steady(on: thread, events: &iterator) {
            case .reduplex: continue
            case .end(let end): return end
            }
        }
    }

    /// Runs one duplex and settles the state it leaves; returns how serving ends, if it does.
    private func duplex(on thread: ServiceThread) async -> End? {
        // The token first: a fault reported once the state says duplexing must abort this duplex.
        engine.stopToken.reset()
        if shuttingDown.load(ordering: .acquiring) { engine.stopToken.requestStop() }
        let first = record.withLock { r -> Bool in
            r.state = .duplexing
            r.duplexes += 1
            return r.duplexes == 1
        }
        engine.updatePolicy(configuration.current.policy)
        let drill = configuration.current.faultDrill
        let hook = first && drill.isArmed && drill.moment != .duplexed ? drill : nil
        let summary = await runEngine(on: thread, drill: hook)
        result.withLock { $0 = summary }
        defer { publishMetrics() }
        if let hook, !drillRaised.load(ordering: .acquiring) {
            logger.notice("fault drill: the first duplex never reached \(hook.moment.rawValue)\(hook.moment == .passes ? " pass \(hook.pass)" : ""); nothing was raised",
                          metadata: ["mirrord_state": "\(summary.finalState.rawValue)"])
            drillRaised.store(true, ordering: .releasing)
        }
        if summary.isDuplexed {
            record.withLock {
                $0.state = .duplexed
                $0.duplexed += 1
            }
            if !first {
                reporter.reduplexed(summary)
                replacementPending.store(false, ordering: .releasing)
            }
            if first && drill.isArmed && drill.moment == .duplexed { scheduleDrill(drill) }
            if let fault = pendingFailover.withLock({ f in defer { f = nil }; return f }) {
                if let end = respond(to: fault, failing: true) { return end }
            }
            // A fault reported during the verify, after the engine's last check, is handled now.
            return handleFaults()
        }
        switch summary.outcome {
        case .failed(.stopped):
            return .stopped(summary.failedIn?.rawValue ?? "idle", logged: true)
        case .failed(.moduleFailed):
            let end = handleFaults()
            record.withLock { if $0.state == .duplexing { $0.state = .simplex } }
            return end
        default:
            record.withLock { $0.state = .failed }
            return mode == .once ? .done : .failed(summary.message)
        }
    }

    /// Runs the engine on the service's thread; a drill in a phase of the duplex is raised from
    /// the engine's events.
    private func runEngine(on thread: ServiceThread, drill: FaultDrill?) async -> DuplexSummary {
        let engine = self.engine
        let reporter = self.reporter
        let machine = self.machine as? any FaultTolerantHardware
        let raised = Atomic<Bool>(false)
        return await thread.run {
            engine.run { event in
                reporter.observe(event)
                switch event {
                case .stateChanged, .passCompleted, .blackoutCompleted, .verifyCompleted: self.publishMetrics()
                default: break
                }
                guard let drill, let machine, !raised.load(ordering: .relaxed), Self.drillFires(drill, on: event) else { return }
                raised.store(true, ordering: .relaxed)
                for fault in drill.faults {
                    // A blackout drill strikes with the CPUs stopped, inside the duplex's next
                    // blackout (a look at the dirty set, or the final one).
                    if drill.moment == .blackout { machine.injectAtNextBlackout(fault) } else { try? machine.inject(fault) }
                }
                self.drillRaised.store(true, ordering: .releasing)
            }
        }
    }

    /// Whether `event` is the moment of a drill in a phase of the duplex.
    private static func drillFires(_ drill: FaultDrill, on event: DuplexEvent) -> Bool {
        switch (drill.moment, event) {
        case (.fullCopy, .stateChanged(_, .fullCopy)), (.blackout, .fullCopyCompleted), (.verify, .stateChanged(_, .verify)):
            return true
        case (.passes, .passCompleted(let pass, _, _)):
            return pass.pass == drill.pass
        default:
            return false
        }
    }

    /// Raises the drill's faults `after` its delay once duplexed.
    private func scheduleDrill(_ drill: FaultDrill) {
        let sink = eventSink
        Task {
            try? await Task.sleep(for: .nanoseconds(Int64(drill.afterNanoseconds)))
            for fault in drill.faults { sink.yield(.inject(fault)) }
            sink.yield(.drillRaised)
        }
    }

    /// Whether `--once` has nothing left to wait for: no drill, or its faults raised and
    /// answered and any replacement duplexed.
    private var onceIsDone: Bool {
        mode == .once && drillRaised.load(ordering: .acquiring) && !replacementPending.load(ordering: .acquiring)
    }

    /// The doorbell: a module fault aborts a running duplex at once; every fault is then handled
    /// on the service's own time.
    private func faultReported(_ fault: ModuleFault) {
        let duplexing = record.withLock { $0.state == .duplexing }
        if duplexing && fault.isFatalToModule { engine.stopToken.abort(because: fault) }
        eventSink.yield(.faultsReported)
    }

    // MARK: - Between duplexes

    /// What the steady loop asks for.
    private enum Next {
        case reduplex
        case end(End)
    }

    /// Scrubs while duplexed, answers faults and the operator, until a duplex is due or the end.
    private func steady(on thread: ServiceThread, events: inout AsyncStream<ServiceEvent>.AsyncIterator) async -> Next {
        if record.withLock({ $0.state }) == .duplexed && mode == .daemon && lifecycle.duplexes == 1 {
            logger.info("duplexed: active and spare in lockstep until stopped; scrubbing memory every \(reporter.watchdog.tick)",
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
                    logger.warning("replace-spare: a spare module is installed already", metadata: ["mirrord_state": "\(state.rawValue)"])
                    continue
                }
                do {
                    try machine.installSpare()
                } catch {
                    logger.error("cannot install the replacement spare: \(error)", metadata: ["mirrord_state": "\(state.rawValue)"])
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
                logger.warning("reduplex: \(installed ? "the pair is \(state.rawValue), not simplex" : "no spare module is installed")",
                               metadata: ["mirrord_state": "\(state.rawValue)"])
            }
            if onceIsDone { return .end(.done) }
        }
        // The stream ended: a graceful shutdown.
        return .end(.stopped(stateName, logged: false))
    }

    /// Answers every fault reported so far (one may be queued behind this request), then says
    /// whether a duplex can start: a spare is installed and nothing ended the service.
    private func readyToReduplex() -> Next? {
        if let end = handleFaults() { return .end(end) }
        let installed = (machine as? any FaultTolerantHardware)?.hasSpare ?? true
        return installed && record.withLock({ $0.state }) == .simplex ? .reduplex : nil
    }

    /// How a scrub slice went.
    private enum ScrubOutcome {
        case holds
        case differs(DuplexSummary.Verify)
        case failed(any Error)
    }

    /// Compares the next slice of memory on the service's thread.
    private func scrubSlice(from next: inout Int, on thread: ServiceThread) async -> ScrubOutcome {
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

    // MARK: - Faults

    /// Takes the faults the hardware reported and answers each; returns how serving ends, if a
    /// fault ends it.
    private func handleFaults() -> End? {
        guard let machine = machine as? any FaultTolerantHardware else { return nil }
        for fault in machine.takeFaults() {
            record.withLock { $0.note(fault) }
            var failing = fault.isFatalToModule
            if fault.kind == .correctable {
                let now = MonotonicClock.nanoseconds()
                let policy = configuration.current.faultTolerance
                let (predicted, count) = correctable.withLock { ledger in
                    ledger.apply(policy)
                    return (ledger.record(fault.module, now: now), ledger.count(fault.module, now: now))
                }
                failing = predicted
                reporter.correctable(fault, count: count, limit: policy.correctableLimit,
                                     failing: predicted, state: record.withLock { $0.state })
            }
            if let end = respond(to: fault, failing: failing) { return end }
        }
        return nil
    }

    /// Carries out what ``FaultResponse`` says of `fault`.
    private func respond(to fault: ModuleFault, failing: Bool) -> End? {
        guard let machine = machine as? any FaultTolerantHardware else { return nil }
        let state = record.withLock { $0.state }
        switch FaultResponse.decide(fault, failing: failing, state: state, hasSpare: machine.hasSpare) {
        case .noted:
            if failing { reporter.faultNoted(fault, state: state) }
        case .failOverWhenDuplexed:
            pendingFailover.withLock { $0 = $0 ?? fault }
        case .abortDuplex:
            // Faults are answered between duplexes: the doorbell has already ended the duplex.
            removeSpare(after: fault, duringDuplex: true)
        case .removeSpare:
            removeSpare(after: fault, duringDuplex: false)
        case .failOver:
            do {
                let nanoseconds = try machine.failOver()
                let micros = nanoseconds / 1_000
                correctable.withLock { $0.failedOver() }
                // The journal and the status first: whoever sees the new state sees them too.
                reporter.failedOver(fault, blackoutMicroseconds: micros,
                                    targetMicroseconds: configuration.current.policy.blackoutTargetNanoseconds / 1_000)
                record.withLock {
                    $0.state = .simplex
                    $0.failovers.append(.init(fault: fault.description, blackoutMicroseconds: micros))
                }
                expectReplacement()
            } catch {
                return lose(fault, what: "failover to the spare failed (\(error)) after \(fault)")
            }
        case .fatal(let what):
            return lose(fault, what: what)
        }
        return nil
    }

    /// Removes the spare after `fault` and goes simplex.
    private func removeSpare(after fault: ModuleFault, duringDuplex: Bool) {
        (machine as? any FaultTolerantHardware)?.removeSpare()
        reporter.spareRemoved(fault, duringDuplex: duringDuplex, state: record.withLock { $0.state })
        record.withLock {
            $0.state = .simplex
            $0.sparesRemoved += 1
        }
        expectReplacement()
    }

    /// After a module is removed: a drill's replacement arrives after `fault.replace_after`
    /// (`--once` waits for its duplex).
    private func expectReplacement() {
        let delay = configuration.current.faultDrill.replaceAfterNanoseconds
        guard delay > 0 else { return }
        replacementPending.store(true, ordering: .releasing)
        let sink = eventSink
        Task {
            try? await Task.sleep(for: .nanoseconds(Int64(delay)))
            sink.yield(.replaceSpare)
        }
    }

    /// Nothing is left to run on.
    private func lose(_ fault: ModuleFault, what: String) -> End {
        reporter.memoryLost(fault, what: what)
        record.withLock {
            $0.state = .failed
            $0.lost = what
        }
        return .failed(what)
    }
}
