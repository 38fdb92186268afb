import CMirrorShims
import Logging
import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrorReplication
import MirrorSystemd
import MirrordConfig
import MirrordControl
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// What the `mirrord` command does once its flags are parsed: check a configuration file, or load
/// the configuration, build the machine and run the duplex service (once, or as a daemon under
/// systemd). It returns the process's exit status instead of exiting, so that it can be tested.
package enum MirrordRunner {
    /// The exit statuses of `mirrord`, after sysexits(3) where one fits, so that a unit's
    /// `RestartPreventExitStatus=` can name the failures a restart cannot cure.
    package enum ExitStatus: Int32, Sendable, CaseIterable {
        /// Duplexed and verified (`--once`), stopped on request (daemon), or a valid file.
        case success = 0
        /// Not duplexed: the verify found differences, the machine failed, or `--once` was
        /// stopped; for `--check-config`, an invalid file or a machine that does not fit.
        case failure = 1
        /// Bad flags (swift-argument-parser's usage error, `EX_USAGE`).
        case usage = 64
        /// The machine does not fit: more memory, address space or threads than the host or
        /// the process's limits give; or backend `uffd` cannot run on this kernel
        /// (`EX_UNAVAILABLE`).
        case unavailable = 69
        /// The summary could not be written, or a module's image went away under the running
        /// machine (`EX_IOERR`).
        case ioError = 74
        /// Another mirrord holds `memory.state_dir` (`EX_TEMPFAIL`: it may be free later).
        case busy = 75
        /// The configuration was rejected (`EX_CONFIG`).
        case configuration = 78

        /// One line per status, for `--help` and the README.
        package static let summary = """
            0 duplexed and verified (--once), stopped on request (daemon), or a valid file (--check-config); \
            1 not duplexed (verify found differences, the machine failed, --once stopped), \
            or for --check-config an invalid file or a machine that does not fit; \
            64 bad flags; 69 the machine does not fit in memory, address space or threads, \
            or backend uffd cannot run here; \
            74 the summary could not be written or a module's image went away; \
            75 another mirrord holds memory.state_dir; 78 configuration rejected
            """
    }

    /// Why mirrord cannot start at all in this process's limits (checked first, before the
    /// runtime needs more threads than the main one), or nil.
    package static func startupRefusal() -> String? {
        MemoryAdmission.startupRefusal().map { "the machine does not fit: \($0)" }
    }

    /// Installs the start-up signal handlers (``StartupSignal``): first thing in `main`.
    package static func installStartupSignalHandlers() { StartupSignal.install() }

    /// Writes one line to standard error, unbuffered.
    package static func printError(_ line: String) { MirrordService.printError(line) }

    /// `mirrord --check-config PATH`: prints `PATH: valid (…)` and, for backend uffd, whether this
    /// kernel can run it; or the error as `PATH:LINE: key: message` on stderr. A valid file whose
    /// machine would not fit on this host is reported too, as the run would refuse it.
    package static func checkConfiguration(at path: String, environment: [String: String]) -> ExitStatus {
        StartupSignal.restoreDefaults()
        let loaded: MirrordConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: path, environment: environment)
        } catch {
            printError("\(error)")
            return .failure
        }
        if let refusal = MemoryAdmission.check(loaded, on: .current()) {
            printError("\(path): valid, but the machine does not fit here: \(refusal)")
            return .failure
        }
        var lines = [
            "\(path): valid (\(ByteCount.format(loaded.machine.memorySize)) of memory, backend \(loaded.backend.rawValue))"
        ]
        if loaded.backend == .uffd {
            switch RealMMUProbe.check() {
            case .success(let works): lines.append("\(path): backend uffd: \(works)")
            case .failure(let error):
                printError("\(path): backend uffd cannot run here: \(error)")
                return .failure
            }
        }
        if let code = writeStandardOutput(lines.joined(separator: "\n") + "\n") {
            printError("cannot write to standard output: \(String(cString: strerror(code)))")
            return .ioError
        }
        return .success
    }

    /// `mirrord [--config PATH] [--once [--json]] [--spare-later]`: duplexes, then (without
    /// `once`) stays in lockstep until SIGTERM, reloading on SIGHUP. With `takeover` (`mirrord
    /// takeover`), brings the export to its last committed epoch and runs the machine from it,
    /// simplex, until SIGTERM (or, with `recoverOnly`, prints the epoch and exits). With
    /// `spareLater`, a spare on another host is reached by the first duplex, as after a takeover,
    /// not at start: a host that is away is retried, not a refusal to start.
    package static func run(
        configPath: String?, once: Bool, json: Bool, environment: [String: String], takeover: TakeoverOptions? = nil,
        spareLater: Bool = false
    ) async -> ExitStatus {
        // A SIGTERM or SIGINT from the start of the process (StartupSignal, installed by main)
        // until the service group's handlers take over is recorded and ends the start-up
        // cleanly; a SIGHUP then is ignored (there is nothing to reload yet).
        let underSystemd = environment["JOURNAL_STREAM"] != nil || environment["INVOCATION_ID"] != nil
        LoggingSystem.bootstrap { label -> any LogHandler in
            underSystemd ? JournalLogHandler(identifier: "mirrord") : ConsoleLogHandler(label: label)
        }
        let logger = Logger(label: "mirrord")
        let notifier = SystemdNotifier()
        // A takeover asked for over the control socket (--on-request): its request's reply waits
        // for the outcome, and its server is this process's control socket to the end.
        // Whatever the way out, its request is answered (a refusal, unless the CPUs ran) before
        // the socket stops, last.
        var asked: (gate: TakeoverOnRequest, server: ControlServer, handler: ControlHandler, go: TakeoverGoFIFO?)?
        defer {
            if let asked {
                asked.gate.refused("mirrord stopped before the machine's CPUs ran (see its journal)")
                // A go's outcome to its client (started ahead, it may come a moment later).
                asked.gate.awaitCollection(seconds: 10)
                asked.go?.stop()
                asked.gate.stopTelling()
                asked.server.stop()
            }
        }
        // The start a takeover asked for over the socket recorded, made durable in the settle, or
        // here on the way out: a caller may start the machine anew on a refused takeover's record.
        var startRecord: StartRecord?
        func refuse(_ status: ExitStatus, _ text: String, errno code: Int32) -> ExitStatus {
            var text = text
            do throws(StartRecordError) {
                try startRecord?.makeDurable()
            } catch {
                // Not the refusal's own words: the caller must not start anew on this record.
                text = "takeover refused: \(error)"
            }
            logger.error("\(text)")
            notifier.fatal(status: text, errno: code)
            asked?.gate.refused(text)
            return status
        }

        let loaded: MirrordConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: configPath, environment: environment)
        } catch {
            logger.configurationRejected(error, "configuration rejected: \(error)")
            notifier.fatal(status: "configuration rejected: \(error)", errno: EINVAL)
            return .configuration
        }
        let configuration = RunningConfiguration(path: configPath, configuration: loaded)
        if let takeover, takeover.recoverOnly {
            do {
                let recovery = try Takeover.recover(takeover, configuration: loaded)
                logger.notice(
                    "\(recovery.line)", metadata: ["mirrord_state": "idle", "epoch": "\(recovery.outcome.epoch)"])
                if let code = writeStandardOutput(recovery.line + "\n") {
                    printError("cannot write to standard output: \(String(cString: strerror(code)))")
                    return .ioError
                }
                return .success
            } catch {
                return refuse(error.kind == .inUse ? .busy : .failure, "\(error)", errno: EINVAL)
            }
        }
        if loaded.backend == .uffd, case .failure(let error) = RealMMUProbe.check() {
            return refuse(.unavailable, "backend uffd cannot run here: \(error)", errno: EOPNOTSUPP)
        }
        if let refusal = MemoryAdmission.check(loaded, on: .current()) {
            return refuse(.unavailable, "the machine does not fit: \(refusal)", errno: ENOMEM)
        }
        // The state directory is this instance's alone: always for image files, and for a
        // daemon whose directory exists (the unit's StateDirectory=).
        let stateDirectory = loaded.machine.stateDirectory
        var lock: StateDirectoryLock?
        if loaded.machine.backing == .file || (!once && StateDirectoryLock.exists(stateDirectory)) {
            do {
                lock = try StateDirectoryLock(directory: stateDirectory, create: loaded.machine.backing == .file)
            } catch {
                return refuse(error.held ? .busy : .failure, "\(error)", errno: error.held ? EBUSY : EACCES)
            }
        }
        defer { withExtendedLifetime(lock) {} }

        if let signal = StartupSignal.received {
            // Taken by the handlers installed before main: nothing to build, nothing to stop.
            logger.notice(
                "stopped by \(signal) during start-up (before the machine was built)",
                metadata: ["mirrord_state": "idle"])
            notifier.stopping(status: "stopped during start-up")
            return once ? .failure : .success
        }
        var takeover = takeover
        if let waiting = takeover, waiting.onRequest {
            switch waitForRequest(waiting, configuration: configuration, logger: logger, notifier: notifier) {
            case .asked(let options, let gate, let server, let handler, let go, let record):
                takeover = options
                asked = (gate, server, handler, go)
                startRecord = record
            case .stopped:
                return .success
            case .refused(let status, let text, let code):
                return refuse(status, text, errno: code)
            }
        }
        let machine: EmulatedMachine
        var start = DuplexService.Start.duplex
        // A takeover's export stays open (and its image file locked) while the machine runs.
        var tookOver: TakeoverRecovery?
        defer { withExtendedLifetime(tookOver) {} }
        if let takeover {
            let recovery: TakeoverRecovery
            do {
                // Made durable once the CPUs run (below): the flush is not in the outage.
                recovery = try Takeover.recover(takeover, configuration: loaded, durable: false)
            } catch {
                return refuse(error.kind == .inUse ? .busy : .failure, "\(error)", errno: EINVAL)
            }
            tookOver = recovery
            logger.info(
                "\(recovery.line); building the machine from it (\(ByteCount.format(loaded.machine.memorySize)), no spare)",
                metadata: ["mirrord_state": "idle"])
            do {
                machine = try Takeover.makeMachine(loaded, from: recovery)
            } catch {
                var status = ExitStatus.failure
                if case .hardware(let hardware) = error, hardware.code == .resources || hardware.code == .memory {
                    status = .unavailable
                }
                return refuse(status, "cannot build the machine from \(takeover.source): \(error)", errno: ENOMEM)
            }
            start = .takeover(
                .init(
                    epoch: recovery.outcome.epoch, framesReplayed: recovery.outcome.framesReplayed,
                    source: takeover.source.description, startedAt: takeover.startedAt))
        } else {
            logger.info(
                "building the machine: two modules of \(ByteCount.format(loaded.machine.memorySize)) (\(loaded.machine.backing.rawValue)), filled before the duplex",
                metadata: ["mirrord_state": "idle"])
            do {
                machine = try MachineFactory.makeMachine(loaded)
            } catch {
                let status: ExitStatus = error.code == .resources || error.code == .memory ? .unavailable : .failure
                return refuse(status, "cannot build the machine: \(error)", errno: ENOMEM)
            }
        }
        watchForLostImages(machine, loaded.machine)
        if let signal = StartupSignal.received {
            defer { machine.shutdown() }
            logger.notice(
                "stopped by \(signal) during start-up (the machine was built, nothing was duplexed)",
                metadata: ["mirrord_state": "idle"])
            notifier.stopping(status: "stopped during start-up")
            return once ? .failure : .success
        }

        // The spare on another host (memory.spare): reached and claimed now, so that a server
        // that is not there, an export too small or another primary's is one clear line. After a
        // takeover (or with --spare-later) it is reached by the first duplex instead, once the
        // CPUs run: the other host (most likely the former primary's) may be down, which is
        // retried, not fatal; and a memory.spare naming the export just taken over is refused
        // there.
        let spare: ExportSpare?
        do {
            if let tookOver {
                spare = RemoteSpareConnector.later(
                    loaded, geometry: machine.geometry, avoiding: tookOver.outcome.generation,
                    tookOverFrom: tookOver.outcome.previousOwner)
            } else if spareLater {
                // Started anew with the peer away: its export is compared with nothing, so a
                // committed epoch on it is not synced over.
                spare = RemoteSpareConnector.later(loaded, geometry: machine.geometry, keepsCommittedEpochs: true)
            } else {
                spare = try RemoteSpareConnector.connect(loaded, geometry: machine.geometry)
            }
        } catch {
            machine.shutdown()
            return refuse(
                error.kind == .io ? .unavailable : .failure, "memory.spare: \(error)",
                errno: error.kind == .io ? EHOSTUNREACH : EINVAL)
        }
        // Output commit for the emulated workload (remote.release_log): released stores are
        // recorded only as their epoch commits.
        var hooks = ReplicationHooks()
        if spare != nil && !loaded.remote.releaseLogPath.isEmpty {
            do {
                hooks = try ReleaseRecorder(path: loaded.remote.releaseLogPath, machine: machine, logger: logger).hooks
            } catch {
                machine.shutdown()
                return refuse(.failure, "remote.release_log: \(error)", errno: EINVAL)
            }
        }
        if spare != nil && loaded.remote.warnsCleartext {
            let text =
                "memory.spare: \(loaded.remote.redactedSpareURI) is plain NBD to another host: memory crosses the "
                + "network unencrypted; use nbds:// (TLS) on any link others can read"
            logger.warning("\(text)", metadata: ["mirrord_state": "idle"])
        }
        let duplex = DuplexService(
            machine: machine, configuration: configuration, mode: once ? .once : .daemon, start: start, logger: logger,
            notifier: notifier, spare: spare, replication: loaded.replication, hooks: hooks
        ) { [tookOver, startRecord] in
            // Once the CPUs run, before the duplex to the spare host begins (nothing released).
            Self.makeDurable(tookOver, startRecord)
        } started: { [asked] outcome in
            switch outcome {
            case .running(let line): asked?.gate.tookOver(line)
            case .failed(let why): asked?.gate.refused(why)
            }
            // The wait is over: a go line counts no more (read off the takeover's path).
            asked?.go?.stop()
            asked?.gate.stopTelling()
        }
        // The socket that waited for the request answers for the service from now on; a
        // `take-over` naming a go line still learns that go's outcome (its client, started ahead,
        // may ask once the CPUs run).
        if let gate = asked?.gate {
            asked?.handler.switchTo { request in
                if case .takeOver(let takeOver) = request, takeOver.told != nil { return gate.reply(to: request) }
                return duplex.controlReply(to: request)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: duplex, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if !once {
            let reload = ReloadService(
                configuration: configuration, duplex: duplex, notifier: notifier, logger: logger,
                environment: environment)
            services.append(.init(service: reload))
        }
        // The control socket (a daemon's only): mirrorctl's way in. Without it the daemon still
        // runs. First in the group, so the group shuts it down last: it answers while the duplex
        // service stops.
        let socketPath = configuration.current.control.socketPath
        if !once && !socketPath.isEmpty && asked == nil {
            do {
                let control = try ControlServer(
                    path: socketPath, group: configuration.current.control.group, logger: logger
                ) { request in
                    duplex.controlReply(to: request)
                }
                services.insert(.init(service: control), at: 0)
            } catch {
                logger.warning(
                    "no control socket (mirrorctl will not reach this daemon): \(error)",
                    metadata: ["mirrord_state": "idle"])
            }
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(20)
        var groupFailed = false
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            groupFailed = true
        }

        // The summary is written whatever the outcome, a failure to start included.
        let summary = duplex.summary
        if json, let summary {
            do {
                if let code = writeStandardOutput(try SummaryJSON.encode(summary, lifecycle: duplex.lifecycle) + "\n") {
                    printError("cannot write the summary to standard output: \(String(cString: strerror(code)))")
                    return .ioError
                }
            } catch {
                printError("cannot encode the summary: \(error)")
                return .failure
            }
        }
        if duplex.couldNotStart { return .unavailable }
        if groupFailed { return .failure }
        let stoppedByRequest = !once && duplex.stoppedOnRequest
        return summary?.isDuplexed == true || stoppedByRequest ? .success : .failure
    }

    /// How a takeover's wait to be asked ended.
    private enum Waited {
        /// Asked: the takeover's options (`takeover_ms` from the request), the socket that waits
        /// for its outcome, the go FIFO still read (until the CPUs run), and the start record
        /// raised (not yet durable), if the request had one.
        case asked(TakeoverOptions, TakeoverOnRequest, ControlServer, ControlHandler, TakeoverGoFIFO?, StartRecord?)
        /// SIGTERM or SIGINT first: nothing was read or changed.
        case stopped
        /// It could not wait: the exit status, why, and the errno for systemd.
        case refused(ExitStatus, String, Int32)
    }

    /// `mirrord takeover --on-request`: serves the control socket (status `waiting`) and waits
    /// for its `take-over`, reading nothing of the export until then.
    private static func waitForRequest(
        _ options: TakeoverOptions, configuration: RunningConfiguration, logger: Logger, notifier: SystemdNotifier
    ) -> Waited {
        let current = configuration.current
        let path = current.control.socketPath
        guard !path.isEmpty else {
            return .refused(
                .configuration, "takeover --on-request: control.socket is empty: the request comes over it", EINVAL)
        }
        let gate = TakeoverOnRequest(
            source: options.source.description,
            configuration: Dictionary(
                uniqueKeysWithValues: DuplexService.statusConfigurationKeys.map { ($0, current.value(forKey: $0)) }),
            goRequest: options.goFIFO.map { _ in TakeoverRequest(startRecord: options.goStartRecord) })
        let handler = ControlHandler { gate.reply(to: $0) }
        let server: ControlServer
        do {
            server = try ControlServer(path: path, group: current.control.group, logger: logger) {
                handler.reply(to: $0)
            }
            try server.serveNow()
        } catch {
            return .refused(.failure, "takeover --on-request: control.socket: \(error)", EADDRNOTAVAIL)
        }
        var go: TakeoverGoFIFO?
        if let path = options.goFIFO {
            do throws(TakeoverGoFIFO.OpenError) {
                go = try TakeoverGoFIFO(path: path, gate: gate, logger: logger)
            } catch {
                gate.close()
                server.stop()
                return .refused(.failure, "takeover --on-request: \(error)", EINVAL)
            }
        }
        logger.notice("\(gate.statusLine)", metadata: ["mirrord_state": "waiting"])
        notifier.ready(status: gate.statusLine)
        while true {
            guard let (askedAt, request) = gate.waitForRequest(stopping: { StartupSignal.received != nil }) else {
                // A request that came after the last look is refused before the server stops.
                gate.close()
                go?.stop()
                server.stop()
                logger.notice(
                    "stopped by \(StartupSignal.received ?? "a signal") while waiting to take over: nothing was read or changed",
                    metadata: ["mirrord_state": "idle"])
                notifier.stopping(status: "stopped while waiting to take over")
                return .stopped
            }
            let record = request.startRecord.map { StartRecord(path: $0) }
            if let record {
                switch recordStart(in: record, options, compared: request.compared, current) {
                case .recorded(let line):
                    logger.info("\(line)", metadata: ["mirrord_state": "starting"])
                case .notKnownNewest(let why):
                    logger.info("\(why)", metadata: ["mirrord_state": "waiting"])
                    gate.notKnownNewest(why)
                    continue
                case .failed(let why):
                    // Answered first: the server's thread waits on it, and stopping joins that thread.
                    gate.refused(why)
                    gate.awaitCollection(seconds: 10)
                    go?.stop()
                    gate.stopTelling()
                    server.stop()
                    return .refused(.failure, why, EIO)
                }
            }
            logger.info("asked to take over from \(options.source)", metadata: ["mirrord_state": "starting"])
            var asked = options
            asked.startedAt = askedAt
            return .asked(asked, gate, server, handler, go, record)
        }
    }

    /// How a take-over's start record went.
    private enum Recorded {
        /// Recorded: the line that says why the takeover goes on.
        case recorded(String)
        /// This host's export is not known to be the newest: why (the takeover keeps waiting).
        case notKnownNewest(String)
        /// The export could not be read, or the record not written: why (nothing starts).
        case failed(String)
    }

    /// Before a takeover asked with a start record reads anything else: this host's export taken
    /// over only when known to be the newest (a generation past the recorded start), or when the
    /// caller `compared` the exports; then the start recorded (``StartRecord``), before the
    /// machine can write anywhere (made durable in the settle, after the CPUs run and before the
    /// machine's first write outside this host).
    private static func recordStart(
        in record: StartRecord, _ options: TakeoverOptions, compared: Bool, _ configuration: MirrordConfiguration
    ) -> Recorded {
        let source: ProbeRunner.Source =
            switch options.source {
            case .image(let path): .image(path: path)
            case .export(let uri): .export(uri: uri)
            }
        let position: ExportProbe.Position?
        do {
            position = try ProbeRunner.probe(source, configuration: configuration, timeout: .seconds(2)).position
        } catch {
            return .failed(
                "takeover refused: cannot read this host's export: \(error); nothing to take over from, nor to compare")
        }
        let started = record.read()
        let export = position.map { "\($0)" } ?? "no committed epoch"
        var line = "this host's export (\(export)) was compared with the peer's by the caller"
        if !compared {
            guard let position, record.knowsNewest(position, started: started) else {
                let why =
                    position == nil
                    ? "it holds no committed epoch"
                    : started == 0
                        ? "no start recorded in \(record.path)"
                        : "the start recorded at \(started) is not before its generation"
                return .notKnownNewest(
                    "take-over: this host's export (\(export)) is not known to be the newest (\(why)): compare it with the peer's, then ask again with compared"
                )
            }
            line =
                "this host's export (\(export)) was synced after this host's machine last started (\(started)): the newest, the peer's export not asked"
        }
        let bound = StartRecord.bound(takingOver: position?.generation)
        do {
            try record.raise(to: bound, durable: false)
        } catch {
            return .failed("takeover refused: \(error)")
        }
        return .recorded("\(line); start recorded (\(bound))")
    }

    /// After a takeover's CPUs run: the start recorded for it, the image it replayed and its new
    /// owner made durable; why not, or nil. A failure stops the machine (nothing it ran was
    /// released): a record that is not stable may be lost, and the memory maps the image file,
    /// whose pages the kernel may since have dropped unwritten, so that a page read again would
    /// hold an older epoch.
    private static func makeDurable(_ recovery: TakeoverRecovery?, _ record: StartRecord?) -> String? {
        do throws(StartRecordError) {
            try record?.makeDurable()
        } catch {
            return "takeover failed: \(error); the machine stops (nothing it ran was released)"
        }
        guard let recovery else { return nil }
        do {
            try recovery.makeDurable()
            return nil
        } catch {
            return "takeover failed: the export taken over, \(recovery.source), could not be flushed after its "
                + "replay: \(error); the machine stops (nothing it ran was released)"
        }
    }

    /// Turns a SIGBUS on either module (an image file truncated behind mirrord's back, its
    /// filesystem full, or a memory error) into one line and exit status 74 instead of a crash.
    private static func watchForLostImages(_ machine: EmulatedMachine, _ options: MachineOptions) {
        for (name, module) in [("active", machine.active), ("spare", machine.spare)] {
            let cause =
                if name == "active", case .image(let path, _) = machine.options.activeMemory {
                    "the export's image \(path) was truncated"
                } else if options.backing == .file && !machine.options.activeMemory.isGiven {
                    "its image \(options.stateDirectory)/\(name).img was truncated or could not be written"
                } else {
                    "a memory error"
                }
            let line =
                "mirrord: the \(name) module went away under the running machine (SIGBUS: \(cause)); "
                + "stopping without a verdict: neither module can be trusted"
            _ = mirrord_sigbus_watch(module.base, module.byteCount, line, ExitStatus.ioError.rawValue)
        }
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    writeStandardError(line + "\n")
}
