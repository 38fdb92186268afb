import CMirrorShims
import Logging
import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrorReplication
import MirrorSystemd
import MirrordConfig
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
        func refuse(_ status: ExitStatus, _ text: String, errno code: Int32) -> ExitStatus {
            logger.error("\(text)")
            notifier.fatal(status: text, errno: code)
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
        let machine: EmulatedMachine
        var start = DuplexService.Start.duplex
        // A takeover's export stays open (and its image file locked) while the machine runs.
        var tookOver: TakeoverRecovery?
        defer { withExtendedLifetime(tookOver) {} }
        if let takeover {
            let recovery: TakeoverRecovery
            do {
                recovery = try Takeover.recover(takeover, configuration: loaded)
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
            notifier: notifier, spare: spare, replication: loaded.replication, hooks: hooks)
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
        if !once && !socketPath.isEmpty {
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
