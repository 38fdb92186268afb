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
package final class DuplexService: Service, Sendable {
    /// Whether the process ends after one duplex.
    package enum Mode: Sendable {
        /// Duplex once and return (after a `[fault]` drill's fault has been handled, when one is set).
        case once
        /// Duplex, then stay fault tolerant until shut down.
        case daemon
    }

    /// Why a daemon ends with a failure status (so that `Restart=on-failure` acts).
    package struct DuplexFailed: Error, CustomStringConvertible {
        /// What failed.
        package var description: String
    }

    /// Frames compared per scrub tick (256 MiB of 4 KiB frames).
    static let scrubSliceFrames = 65_536

    /// The engine that runs each duplex.
    package let engine: DuplexEngine
    let machine: any ServiceMachine
    let configuration: RunningConfiguration
    let mode: Mode
    let logger: Logger
    let reporter: ProgressReporter
    private let result = Mutex<DuplexSummary?>(nil)
    private let startFailed = Mutex(false)
    let record = Mutex(LifecycleRecord())
    let correctable: Mutex<CorrectableErrorLedger>
    private let shuttingDown = Atomic<Bool>(false)
    private let stoppedByRequest = Atomic<Bool>(false)
    /// A fault on the active module that waits for the running duplex to end (a predicted failure).
    let pendingFailover = Mutex<ModuleFault?>(nil)
    /// Whether the `[fault]` drill's faults have been raised (or its moment has passed without
    /// coming), and whether a replacement spare is still to be duplexed: `--once` waits for both.
    let drillRaised = Atomic<Bool>(false)
    let replacementPending = Atomic<Bool>(false)
    let metrics: MetricsTextfile?
    let events: AsyncStream<ServiceEvent>
    let eventSink: AsyncStream<ServiceEvent>.Continuation

    /// A service for `machine`, with the configuration in force and where progress goes.
    package init(
        machine: any ServiceMachine, configuration: RunningConfiguration, mode: Mode, logger: Logger,
        notifier: SystemdNotifier
    ) {
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
        correctable = Mutex(
            CorrectableErrorLedger(limit: tolerance.correctableLimit, window: tolerance.correctableWindowNanoseconds))
        (events, eventSink) = AsyncStream.makeStream(of: ServiceEvent.self)
        metrics = current.metricsTextfile.isEmpty ? nil : MetricsTextfile(path: current.metricsTextfile, logger: logger)
    }

    /// Writes the metrics file (when one is configured) from the state now.
    func publishMetrics() {
        metrics?.publish(lifecycle: lifecycle, progress: reporter.progress, summary: summary)
    }

    /// The summary of the last duplex, once one has ended.
    package var summary: DuplexSummary? { result.withLock { $0 } }

    /// What happened to the module pair so far.
    package var lifecycle: LifecycleRecord { record.withLock { $0 } }

    /// Whether the service could not start the machine (a thread refused): a resource the
    /// process lacks, not a failed duplex.
    package var couldNotStart: Bool { startFailed.withLock { $0 } }

    /// Whether the service ended on a graceful shutdown (SIGTERM, SIGINT).
    package var stoppedOnRequest: Bool { stoppedByRequest.load(ordering: .acquiring) }

    /// The last status text sent.
    package var status: String { reporter.status }

    /// Replaces the engine's status text.
    package func setStatus(_ text: String) { reporter.setStatus(text) }

    /// Puts a reload's outcome in front of the engine's status text (replacing an earlier
    /// reload's) and returns the status to send with `READY=1`.
    package func statusAfterReload(_ outcome: String) -> String { reporter.statusAfterReload(outcome) }

    /// The engine's progress as its last events left it.
    var progress: LiveProgress { reporter.progress }

    /// The configuration in force.
    var runningConfiguration: MirrordConfiguration { configuration.current }

    /// The machine, for the control socket's status.
    var machineForControl: any ServiceMachine { machine }

    // MARK: - Running

    /// Starts the machine, duplexes, then (as a daemon, or while a drill runs) keeps the pair
    /// fault tolerant until a graceful shutdown.
    package func run() async throws {
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
            var failed = DuplexSummary(
                backend: machine.backendName, geometry: machine.geometry,
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
    enum End {
        /// `--once` is done (its summary says how the duplex went).
        case done
        /// A graceful shutdown, in this state (`logged`: the engine logged its own stop).
        case stopped(String, logged: Bool)
        /// The pair failed; the status says why.
        case failed(String)
    }

    /// The state the journal's last line names: the engine's while it runs, else the pair's.
    var stateName: String {
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
            logger.notice(
                "fault drill: the first duplex never reached \(hook.moment.rawValue)\(hook.moment == .passes ? " pass \(hook.pass)" : ""); nothing was raised",
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
            if let fault = pendingFailover.withLock({ f in
                defer { f = nil }
                return f
            }) {
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
                guard let drill, let machine, !raised.load(ordering: .relaxed), Self.drillFires(drill, on: event) else {
                    return
                }
                raised.store(true, ordering: .relaxed)
                for fault in drill.faults {
                    // A blackout drill strikes with the CPUs stopped, inside the duplex's next
                    // blackout (a look at the dirty set, or the final one).
                    if drill.moment == .blackout {
                        machine.injectAtNextBlackout(fault)
                    } else {
                        try? machine.inject(fault)
                    }
                }
                self.drillRaised.store(true, ordering: .releasing)
            }
        }
    }

    /// Whether `event` is the moment of a drill in a phase of the duplex.
    private static func drillFires(_ drill: FaultDrill, on event: DuplexEvent) -> Bool {
        switch (drill.moment, event) {
        case (.fullCopy, .stateChanged(_, .fullCopy)), (.blackout, .fullCopyCompleted),
            (.verify, .stateChanged(_, .verify)):
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
    var onceIsDone: Bool {
        mode == .once && drillRaised.load(ordering: .acquiring) && !replacementPending.load(ordering: .acquiring)
    }

}
