import Logging
import MirrorCore
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
/// Where it stands is one value, a ``LifecycleSnapshot`` behind one lock, changed only by
/// ``LifecycleMachine/transition(_:on:)``; this class carries out the effects each transition
/// asks for. A graceful shutdown (SIGTERM, SIGINT) announces `STOPPING=1` and asks the engine to
/// stop at its next safe point; a blackout already entered is completed, so the CPUs are never
/// left stopped. The last log entry says which state mirrord stopped in.
package final class DuplexService: Service, Sendable {
    /// Whether the process ends after one duplex.
    package enum Mode: Sendable {
        /// Duplex once and return (after a `[fault]` drill's fault has been handled, when one is set).
        case once
        /// Duplex, then stay fault tolerant until shut down.
        case daemon
    }

    /// How the service begins.
    package enum Start: Sendable, Hashable {
        /// With a duplex of the spare (the first).
        case duplex
        /// Simplex, from memory a takeover brought to a committed epoch (`mirrord takeover`); then,
        /// with a spare on another host, a duplex to it.
        case takeover(TakeoverStart)
    }

    /// What a takeover's start reports once the CPUs run.
    package struct TakeoverStart: Sendable, Hashable {
        /// The committed epoch the machine runs from.
        package var epoch: UInt64
        /// Frames replayed from the journal.
        package var framesReplayed: Int
        /// The export: its image file's path or its URI.
        package var source: String
        /// When the command started (monotonic nanoseconds).
        package var startedAt: UInt64

        /// A takeover's start from committed `epoch` of `source`.
        package init(epoch: UInt64, framesReplayed: Int, source: String, startedAt: UInt64) {
            self.epoch = epoch
            self.framesReplayed = framesReplayed
            self.source = source
            self.startedAt = startedAt
        }
    }

    /// How the machine's start went, as ``init(machine:configuration:mode:start:logger:notifier:clock:spare:replication:hooks:started:)``'s
    /// `started` hears it: once, when the CPUs run or could not be started.
    package enum StartOutcome: Sendable {
        /// The CPUs run; after a takeover, the line that says from which epoch and how fast.
        case running(String)
        /// The machine could not start: why.
        case failed(String)
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
    /// The clock the engine measures on and the service counts correctable errors by.
    let clock: any EngineClock
    let machine: any ServiceMachine
    let configuration: RunningConfiguration
    let mode: Mode
    /// How the service begins.
    let start: Start
    let logger: Logger
    let reporter: ProgressReporter
    /// The life cycle: the one value every reader of the service's state reads.
    private let life: Mutex<LifecycleSnapshot>
    private let metrics: MetricsTextfile?
    private let events: AsyncStream<ServiceEvent>
    /// Tries of a lost spare host since it last answered.
    private let resyncAttempts = Atomic<Int>(0)
    let eventSink: AsyncStream<ServiceEvent>.Continuation
    /// Told how the machine's start went (a takeover asked for over the control socket answers
    /// its request with it).
    private let started: @Sendable (StartOutcome) -> Void
    /// Called once the CPUs run, before the start is reported to `started` and before any duplex:
    /// what must hold before anything the machine runs can be released (a takeover's replayed
    /// image made durable); why it does not, or nil.
    private let settle: @Sendable () -> String?

    /// A service for `machine`, with the configuration in force, how it begins (a duplex, or a
    /// takeover's simplex), where progress goes, and the clock the engine measures on (the
    /// system's unless a test gives its own). With a `spare` on another host, each duplex syncs it
    /// and epochs then keep it level (`replication`, with `hooks` at each epoch's pause and commit
    /// for output commit). `settle` runs once the CPUs run, before anything else: a failure it
    /// names ends the start as a failed one (nothing was released). `started` hears once how the
    /// machine's start went (a takeover asked for over the control socket answers the request
    /// with it).
    package init(
        machine: any ServiceMachine, configuration: RunningConfiguration, mode: Mode, start: Start = .duplex,
        logger: Logger, notifier: SystemdNotifier, clock: any EngineClock = SystemClock(),
        spare: (any SpareStore)? = nil, replication: ReplicationPolicy = ReplicationPolicy(),
        hooks: ReplicationHooks = ReplicationHooks(), settle: @escaping @Sendable () -> String? = { nil },
        started: @escaping @Sendable (StartOutcome) -> Void = { _ in }
    ) {
        self.started = started
        self.settle = settle
        self.machine = machine
        self.configuration = configuration
        self.mode = mode
        self.start = start
        self.logger = logger
        self.clock = clock
        let current = configuration.current
        let engine = DuplexEngine(
            hardware: machine, policy: current.policy, clock: clock, spare: spare, replication: replication,
            hooks: hooks)
        self.engine = engine
        self.reporter = ProgressReporter(
            logger: logger, geometry: machine.geometry, notifier: notifier,
            hangAfterPass: current.hangAfterPass, stopToken: engine.stopToken)
        life = Mutex(LifecycleSnapshot(tolerance: current.faultTolerance, drillArmed: current.faultDrill.isArmed))
        (events, eventSink) = AsyncStream.makeStream(of: ServiceEvent.self)
        metrics = current.metricsTextfile.isEmpty ? nil : MetricsTextfile(path: current.metricsTextfile, logger: logger)
    }

    // MARK: - The state, as every reader sees it

    /// Where the service stands.
    package var state: ServiceState { life.withLock { $0.state } }

    /// The summary of the last duplex, once one has ended.
    package var summary: DuplexSummary? { life.withLock { $0.summary } }

    /// What happened to the module pair so far.
    package var lifecycle: LifecycleRecord { life.withLock { $0.record } }

    /// Whether the service could not start the machine (a thread refused): a resource the
    /// process lacks, not a failed duplex.
    package var couldNotStart: Bool {
        if case .failed(.couldNotStart) = state { return true }
        return false
    }

    /// Whether the service ended on a graceful shutdown (SIGTERM, SIGINT).
    package var stoppedOnRequest: Bool { state.isStopping }

    /// The last status text sent.
    package var status: String { reporter.status }

    /// Replaces the status text as it is (a test's starting point for a reload).
    package func setStatus(_ text: String) { reporter.replaceStatus(text) }

    /// Puts a reload's outcome in front of the status text (replacing an earlier reload's) and
    /// returns the status to send with `READY=1`.
    package func statusAfterReload(_ outcome: String) -> String { reporter.statusAfterReload(outcome) }

    /// The engine's progress as its last events left it.
    var progress: LiveProgress { reporter.progress }

    /// The configuration in force.
    var runningConfiguration: MirrordConfiguration { configuration.current }

    /// The machine, for the control socket's status.
    var machineForControl: any ServiceMachine { machine }

    /// Whether `--once` has nothing left to wait for: no drill, or its faults raised and
    /// answered and any replacement duplexed.
    var onceIsDone: Bool {
        mode == .once && life.withLock { $0.drillRaised && !$0.replacementPending }
    }

    /// Writes the metrics file (when one is configured) from the state now; `stopped` when a
    /// graceful shutdown has ended the service (the file's last word: ``MetricsState/stopped``).
    func publishMetrics(stopped: Bool = false) {
        guard let metrics else { return }
        let (state, record, summary) = life.withLock { ($0.state, $0.record, $0.summary) }
        metrics.publish(
            state: stopped ? .stopped : MetricsState(state.name), lifecycle: record, progress: reporter.progress,
            summary: summary)
    }

    // MARK: - Transitions

    /// Takes `event` through the life cycle: the new state, its journal entries and status line
    /// are in place together, under the one lock, before anyone can read the state; then the
    /// effects on the machine and the service are carried out. Returns how serving ends or
    /// continues, if an effect says so.
    @discardableResult
    func apply(_ event: LifecycleEvent) -> Next? {
        let config = configuration.current
        let effects: [LifecycleEffect] = life.withLock { snapshot in
            let (next, effects) = LifecycleMachine.transition(snapshot, on: event)
            if next.state != snapshot.state { reporter.enter(next.state, from: snapshot.state) }
            snapshot = next
            return effects.filter { effect in
                guard case .report(let report) = effect else { return true }
                reporter.report(report, configuration: config)
                return false
            }
        }
        return perform(effects)
    }

    /// Carries out `effects` in order; returns how serving ends or continues, if one says so.
    private func perform(_ effects: [LifecycleEffect]) -> Next? {
        var next: Next?
        for effect in effects {
            switch effect {
            case .stopEngine:
                engine.stopToken.requestStop()
            case .failOver(let fault):
                guard let machine = machine as? any FaultTolerantHardware else { continue }
                do {
                    let nanoseconds = try machine.failOver()
                    next = apply(.failedOver(fault, microseconds: nanoseconds / 1_000)) ?? next
                } catch {
                    next = apply(.failoverFailed(fault, "\(error)")) ?? next
                }
            case .removeSpare:
                (machine as? any FaultTolerantHardware)?.removeSpare()
            case .dropLockstep:
                machine.setLockstep(false)
                machine.setDMADualWrite(false)
            case .reduplexWhenReady:
                next = readyToReduplex() ?? next
            case .expectReplacement:
                expectReplacement()
            case .resyncLater:
                resyncLater()
            case .fail(let what):
                next = .end(.failed(what))
            case .report:
                break  // told under the lock, with the state
            }
            if case .end = next { return next }
        }
        return next
    }

    /// Answers every fault reported so far (one may be queued behind this request), then says
    /// whether a duplex can start: a spare is installed and nothing ended the service.
    func readyToReduplex() -> Next? {
        if let end = handleFaults() { return .end(end) }
        guard hasSpareToDuplex, case .simplex = state else { return nil }
        return .reduplex
    }

    /// Whether there is a spare to duplex to: one on another host (the machine after a takeover
    /// has no spare module), or an installed spare module.
    var hasSpareToDuplex: Bool {
        engine.spare != nil || ((machine as? any FaultTolerantHardware)?.hasSpare ?? true)
    }

    /// Tries the spare on another host again after a backoff that doubles with each try that
    /// fails (1 s, 2 s, 4 s, … at most ``longestResyncBackoff``), reset once replicating again.
    private func resyncLater() {
        let attempt = resyncAttempts.add(1, ordering: .relaxed).oldValue
        let delay = min(Self.longestResyncBackoff, Duration.seconds(1 << min(attempt, 5)))
        let sink = eventSink
        Task {
            try? await Task.sleep(for: delay)
            sink.yield(.reduplex)
        }
    }

    /// The longest wait between two tries of a lost spare host.
    static let longestResyncBackoff = Duration.seconds(30)

    /// After a module is removed: a drill's replacement arrives after `fault.replace_after`
    /// (`--once` waits for its duplex).
    private func expectReplacement() {
        let delay = configuration.current.faultDrill.replaceAfterNanoseconds
        guard delay > 0 else { return }
        apply(.replacementScheduled)
        let sink = eventSink
        Task {
            try? await Task.sleep(for: .nanoseconds(Int64(delay)))
            sink.yield(.replaceSpare)
        }
    }

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
            throw startFailed("cannot start the machine: \(error)", errno: EAGAIN)
        }
        defer { thread.stop() }
        let running: String
        if case .takeover(let takeover) = start {
            running = tookOver(takeover)
        } else {
            reporter.starting(configuration: configuration.current, backend: machine.backendName)
            running = "the machine runs"
        }
        // The CPUs run (`takeover_ms` says when); nothing is released before the settle.
        if let failure = settle() { throw startFailed(failure, errno: EIO) }
        started(.running(running))
        if let signal = StartupSignal.received {
            // Arrived after the start-up's check and before the service group's own handlers.
            logger.notice(
                "\(signal) during start-up: stopping before the duplex", metadata: ["mirrord_state": "starting"])
            apply(.shutdownRequested)
        }
        let faultTolerant = machine as? any FaultTolerantHardware
        faultTolerant?.setFaultDoorbell { [weak self] fault in self?.faultReported(fault) }

        let end = await withGracefulShutdownHandler {
            await self.serve(on: thread)
        } onGracefulShutdown: {
            self.apply(.shutdownRequested)
            self.reporter.stopping(in: self.stoppedStateName)
            self.eventSink.finish()
        }
        eventSink.finish()
        // The file says how the service ended: stopped on a graceful shutdown, failed, or the
        // state `--once` finished in (its result).
        if case .stopped = end { publishMetrics(stopped: true) } else { publishMetrics() }
        switch end {
        case .done:
            return
        case .stopped(let state, let logged):
            if !logged { logger.info("stopped in state \(state)", metadata: ["mirrord_state": "\(state)"]) }
        case .failed(let text):
            reporter.notifier.fatal(status: reporter.status, errno: EIO)
            throw DuplexFailed(description: text)
        }
    }

    /// How serving ends.
    enum End {
        /// `--once` is done (its summary says how the duplex went).
        case done
        /// A graceful shutdown, in this state (`logged`: the engine logged its own stop).
        case stopped(String, logged: Bool)
        /// The pair failed; the status says why.
        case failed(String)
    }

    /// What the steady loop, or an effect, asks for.
    enum Next {
        /// Start a duplex of the installed spare.
        case reduplex
        /// Serving ends.
        case end(End)
    }

    /// The state the journal's last line names: the engine's while it duplexes, else the pair's.
    var stoppedStateName: String {
        let running = state.running
        if case .duplexing = running { return reporter.state.rawValue }
        return running.name.rawValue
    }

    /// The machine did not start (`text` says why): said, and the service failed.
    private func startFailed(_ text: String, errno code: Int32) -> DuplexFailed {
        logger.error("\(text)", metadata: ["mirrord_state": "starting"])
        reporter.notifier.fatal(status: text, errno: code)
        let policy = configuration.current.policy
        var failed = DuplexSummary(
            backend: machine.backendName, geometry: machine.geometry,
            thresholdFrames: policy.thresholdFrames, policy: policy)
        failed.outcome = .failed(.hardwareError)
        failed.message = text
        failed.finalState = .failed
        failed.failedIn = .idle
        life.withLock { $0.summary = failed }
        apply(.startFailed(text))
        started(.failed(text))
        return DuplexFailed(description: text)
    }

    /// The CPUs run on the taken-over memory: `takeover_ms` on standard output and in the journal,
    /// and the service is simplex. Returns the line printed (without its newline).
    private func tookOver(_ takeover: TakeoverStart) -> String {
        let milliseconds = Double(MonotonicClock.nanoseconds() &- takeover.startedAt) / 1e6
        let line =
            "took over from epoch \(takeover.epoch) of \(takeover.source): \(takeover.framesReplayed) frames replayed, "
            + "takeover_ms \(format(milliseconds, 1))"
        _ = writeStandardOutput(line + "\n")
        apply(
            .tookOver(
                epoch: takeover.epoch, framesReplayed: takeover.framesReplayed, milliseconds: milliseconds,
                source: takeover.source))
        return line
    }

    /// Duplexes (after a takeover, only to a spare on another host: it starts simplex), then waits
    /// for what comes next, until the end.
    private func serve(on thread: ServiceThread) async -> End {
        var iterator = events.makeAsyncIterator()
        // After a takeover, a duplex only to a spare on another host (there is no spare module).
        var duplexDue = start == .duplex || engine.spare != nil
        if !duplexDue && state.isStopping { return .stopped(stoppedStateName, logged: false) }
        while true {
            if duplexDue, let end = await duplex(on: thread) { return end }
            duplexDue = true
            if onceIsDone { return .done }
            // Epochs run on the service's thread beside the steady loop, which answers the
            // operator, faults and ticks meanwhile; their end comes back as an event.
            let replication = replicate(on: thread)
            let next = await steady(on: thread, events: &iterator)
            if let replication {
                if case .end = next { engine.stopToken.requestStop() }
                await replication.value
            }
            switch next {
            case .reduplex: continue
            case .end(let end): return end
            }
        }
    }

    /// Runs one duplex and settles the state it leaves; returns how serving ends, if it does.
    private func duplex(on thread: ServiceThread) async -> End? {
        // The token first: a fault reported once the state says duplexing must abort this duplex.
        engine.stopToken.reset()
        apply(.duplexStarted)
        let duplexing = state
        if duplexing.isStopping { engine.stopToken.requestStop() }
        guard case .duplexing(let started) = duplexing.running else { return nil }
        engine.updatePolicy(configuration.current.policy)
        let drill = configuration.current.faultDrill
        let hook = started.first && drill.isArmed && drill.moment != .duplexed ? drill : nil
        let summary = await runEngine(on: thread, drill: hook)
        defer { publishMetrics() }
        if let hook, !life.withLock({ $0.drillRaised }) {
            logger.notice(
                "fault drill: the first duplex never reached \(hook.moment.rawValue)\(hook.moment == .passes ? " pass \(hook.pass)" : ""); nothing was raised",
                metadata: ["mirrord_state": "\(summary.finalState.rawValue)"])
            apply(.drillRaised)
        }
        if summary.outcome == .failed(.moduleFailed) {
            // The faults the duplex ended on are answered first: they say why it ended.
            if let end = handleFaults() {
                life.withLock { $0.summary = summary }
                return end
            }
        }
        let next = apply(.duplexEnded(summary))
        if summary.isDuplexed {
            // Decided on the summary, not on the state: a failover waiting for this duplex has
            // already left it simplex.
            if started.first && drill.isArmed && drill.moment == .duplexed { scheduleDrill(drill) }
            if case .end(let end) = next { return end }
            // A fault reported during the verify, after the engine's last check, is handled now.
            return handleFaults()
        }
        if case .end(let end) = next { return end }
        switch state.running {
        case .duplexing:
            // Stopped: only a graceful shutdown stops a duplex.
            return .stopped(summary.failedIn?.rawValue ?? "idle", logged: true)
        case .failed:
            return mode == .once ? .done : .failed(summary.message)
        default:
            return nil
        }
    }

    /// Starts epoch replication on the service's thread when the duplex ended replicating.
    private func replicate(on thread: ServiceThread) -> Task<Void, Never>? {
        guard case .replicating(let replicating) = state.running else {
            // A duplex that ended replicating, its state settled otherwise meanwhile (a fault
            // answered first): its writers must not wait at the dirty limit for pauses.
            if summary?.outcome.isReplicating == true { engine.abandonReplication() }
            return nil
        }
        resyncAttempts.store(0, ordering: .relaxed)
        logger.notice(
            "replicating to \(replicating.spare): an epoch every \(engine.replication.epochNanoseconds / 1_000_000) ms",
            metadata: [
                "mirrord_state": "replicating", "spare": "\(replicating.spare)",
                "message_id": "\(MessageID.replicating.rawValue)",
            ])
        let engine = self.engine
        let reporter = self.reporter
        let logger = self.logger
        let sink = eventSink
        return Task {
            let end = await thread.run {
                // The metrics follow on the steady loop's ticks, not on every epoch.
                engine.replicate { event in reporter.observe(event, spare: replicating.spare) }
            }
            if end.reason == .stopped {
                // The steady loop has ended by now; this is the last word of replication.
                logger.notice(
                    "\(end.message): the spare host holds memory as it stopped",
                    metadata: [
                        "mirrord_state": "stopping", "message_id": "\(MessageID.lastEpochCommitted.rawValue)",
                        "epoch": "\(end.lastCommittedEpoch)",
                    ])
            }
            sink.yield(.replicationEnded(end))
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
                self.apply(.drillRaised)
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
}
