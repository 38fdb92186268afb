import ArgumentParser
import Logging
import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrorSystemd
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `mirrord`: duplex the active memory module into the spare and keep them in lockstep.
@main
struct MirrordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirrord",
        abstract: "Duplex a busy active memory module into a spare and keep them in lockstep.",
        discussion: """
            Without --once, mirrord runs as a daemon (a systemd Type=notify service): it duplexes, \
            then stays duplexed (every write reaches both modules) until SIGTERM; SIGHUP re-reads \
            the configuration file. With --once it duplexes once and exits 0 when the spare was \
            verified equal to the active module, 1 otherwise. Without --config, the built-in \
            defaults serve (the same as config/mirrord.conf). Keys can be overridden with \
            MIRRORD_<SECTION>_<KEY> environment variables.
            """,
        subcommands: [BenchCommand.self])

    @Option(name: .long, help: ArgumentHelp("Read the configuration from this file.", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Duplex once, print the result and exit (0 when duplexed and verified).")
    var once = false

    @Flag(name: .long, help: "With --once: print the summary as one JSON object on stdout.")
    var json = false

    @Option(name: .customLong("check-config"),
            help: ArgumentHelp("Check a configuration file and exit: 0 when valid, 1 with PATH:LINE: key: message.",
                               valueName: "path"))
    var checkConfig: String?

    /// Checks the combination of flags (in `run`, not `validate`: ArgumentParser validates this
    /// command also when a subcommand such as `bench --json` runs).
    private func checkFlags() throws {
        if json && !once { throw ValidationError("--json goes with --once") }
        if checkConfig != nil && (once || config != nil) {
            throw ValidationError("--check-config PATH runs alone; drop --once and --config")
        }
    }

    func run() async throws {
        try checkFlags()
        let environment = ProcessEnvironment.current
        if let path = checkConfig {
            let loaded: MirrordConfiguration
            do {
                loaded = try ConfigurationLoader.load(path: path, environment: environment)
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            print("\(path): valid (\(ByteCount.format(loaded.memory.size)) of memory, backend \(loaded.hardware.backend.rawValue))")
            if loaded.hardware.backend == .uffd {
                switch RealMMUProbe.check() {
                case .success(let works): print("\(path): backend uffd: \(works)")
                case .failure(let error):
                    printError("\(path): backend uffd cannot run here: \(error)")
                    throw ExitCode(1)
                }
            }
            return
        }

        let underSystemd = environment["JOURNAL_STREAM"] != nil || environment["INVOCATION_ID"] != nil
        LoggingSystem.bootstrap { label -> any LogHandler in
            underSystemd ? JournalLogHandler(identifier: "mirrord") : ConsoleLogHandler(label: label)
        }
        let logger = Logger(label: "mirrord")
        let notifier = SystemdNotifier()

        let loaded: MirrordConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: config, environment: environment)
        } catch {
            logger.configurationRejected(error, "configuration rejected: \(error)")
            notifier.fatal(status: "configuration rejected: \(error)", errno: EINVAL)
            throw ExitCode(1)
        }
        let configuration = RunningConfiguration(path: config, configuration: loaded)
        if loaded.hardware.backend == .uffd, case .failure(let error) = RealMMUProbe.check() {
            logger.error("backend uffd cannot run here: \(error)")
            notifier.fatal(status: "backend uffd cannot run here: \(error)", errno: EOPNOTSUPP)
            throw ExitCode(1)
        }

        let machine: EmulatedMachine
        do {
            machine = try EmulatedMachine(configuration: loaded)
        } catch {
            logger.error("cannot build the machine: \(error)")
            notifier.fatal(status: "cannot build the machine: \(error)", errno: ENOMEM)
            throw ExitCode(1)
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
            throw ExitCode(1)
        }

        let summary = duplex.summary
        if json, let summary { print(try SummaryJSON.encode(summary)) }
        let stoppedByRequest = !once && summary?.reason == "stopped"
        if summary?.isDuplexed != true && !stoppedByRequest { throw ExitCode(1) }
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
