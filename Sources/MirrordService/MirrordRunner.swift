import Logging
import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrorSystemd
import MirrordConfig
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// What the `mirrord` command does once its flags are parsed: check a configuration file, or load
/// the configuration, build the machine and run the duplex service (once, or as a daemon under
/// systemd). It returns the process's exit status instead of exiting, so that it can be tested.
public enum MirrordRunner {
    /// The exit statuses of `mirrord`.
    public enum ExitStatus: Int32, Sendable {
        /// Duplexed and verified (`--once`), stopped on request (daemon), or a valid file.
        case success = 0
        /// Not duplexed, or the configuration or the machine could not be used.
        case failure = 1
    }

    /// `mirrord --check-config PATH`: prints `PATH: valid (…)` and, for backend uffd, whether this
    /// kernel can run it; or the error as `PATH:LINE: key: message` on stderr.
    public static func checkConfiguration(at path: String, environment: [String: String]) -> ExitStatus {
        let loaded: MirrordConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: path, environment: environment)
        } catch {
            printError("\(error)")
            return .failure
        }
        print("\(path): valid (\(ByteCount.format(loaded.machine.memorySize)) of memory, backend \(loaded.backend.rawValue))")
        if loaded.backend == .uffd {
            switch RealMMUProbe.check() {
            case .success(let works): print("\(path): backend uffd: \(works)")
            case .failure(let error):
                printError("\(path): backend uffd cannot run here: \(error)")
                return .failure
            }
        }
        return .success
    }

    /// `mirrord [--config PATH] [--once [--json]]`: duplexes, then (without `once`) stays in
    /// lockstep until SIGTERM, reloading on SIGHUP.
    public static func run(configPath: String?, once: Bool, json: Bool, environment: [String: String]) async -> ExitStatus {
        let underSystemd = environment["JOURNAL_STREAM"] != nil || environment["INVOCATION_ID"] != nil
        LoggingSystem.bootstrap { label -> any LogHandler in
            underSystemd ? JournalLogHandler(identifier: "mirrord") : ConsoleLogHandler(label: label)
        }
        let logger = Logger(label: "mirrord")
        let notifier = SystemdNotifier()

        let loaded: MirrordConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: configPath, environment: environment)
        } catch {
            logger.configurationRejected(error, "configuration rejected: \(error)")
            notifier.fatal(status: "configuration rejected: \(error)", errno: EINVAL)
            return .failure
        }
        let configuration = RunningConfiguration(path: configPath, configuration: loaded)
        if loaded.backend == .uffd, case .failure(let error) = RealMMUProbe.check() {
            logger.error("backend uffd cannot run here: \(error)")
            notifier.fatal(status: "backend uffd cannot run here: \(error)", errno: EOPNOTSUPP)
            return .failure
        }

        let machine: EmulatedMachine
        do {
            machine = try MachineFactory.makeMachine(loaded)
        } catch {
            logger.error("cannot build the machine: \(error)")
            notifier.fatal(status: "cannot build the machine: \(error)", errno: ENOMEM)
            return .failure
        }

        let duplex = DuplexService(
            machine: machine, configuration: configuration, mode: once ? .once : .daemon, logger: logger, notifier: notifier)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: duplex, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if !once {
            let reload = ReloadService(
                configuration: configuration, duplex: duplex, notifier: notifier, logger: logger, environment: environment)
            services.append(.init(service: reload))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(20)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            return .failure
        }

        let summary = duplex.summary
        if json, let summary {
            do {
                print(try SummaryJSON.encode(summary))
            } catch {
                printError("cannot encode the summary: \(error)")
                return .failure
            }
        }
        let stoppedByRequest = !once && summary?.outcome == .failed(.stopped)
        return summary?.isDuplexed == true || stoppedByRequest ? .success : .failure
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    writeStandardError(line + "\n")
}

/// Writes text to file descriptor 2 in one call (unbuffered, so lines from threads do not mix).
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}
