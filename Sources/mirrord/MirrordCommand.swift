import ArgumentParser
import Logging
import MirrorCore
import MirrorEmulation
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
            Without --once, mirrord runs as a daemon: it duplexes, then stays duplexed (every write \
            reaches both modules) until SIGTERM. With --once it duplexes once and exits 0 when the \
            spare was verified equal to the active module, 1 otherwise. Without --config, the \
            built-in defaults serve (the same as config/mirrord.conf). Keys can be overridden with \
            MIRRORD_<SECTION>_<KEY> environment variables.
            """)

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

    func validate() throws {
        if json && !once { throw ValidationError("--json goes with --once") }
        if checkConfig != nil && (once || config != nil) {
            throw ValidationError("--check-config PATH runs alone; drop --once and --config")
        }
    }

    func run() async throws {
        let environment = ProcessEnvironment.current
        if let path = checkConfig {
            do {
                let loaded = try ConfigurationLoader.load(path: path, environment: environment)
                print("\(path): valid (\(ByteCount.format(loaded.memory.size)) of memory, backend \(loaded.hardware.backend.rawValue))")
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            return
        }

        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label) }
        let logger = Logger(label: "mirrord")

        let configuration: MirrordConfiguration
        do {
            configuration = try ConfigurationLoader.load(path: config, environment: environment)
        } catch {
            logger.error("configuration rejected: \(error)")
            throw ExitCode(1)
        }

        let machine: EmulatedMachine
        do {
            machine = try EmulatedMachine(configuration: configuration)
        } catch {
            logger.error("cannot build the machine: \(error)")
            throw ExitCode(1)
        }

        let service = DuplexService(
            machine: machine, configuration: configuration, mode: once ? .once : .daemon, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()

        let summary = service.summary
        if json, let summary { print(try SummaryJSON.encode(summary)) }
        if summary?.isDuplexed != true { throw ExitCode(1) }
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
