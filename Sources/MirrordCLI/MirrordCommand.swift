import ArgumentParser
import MirrorCore
import MirrordControl
import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// `mirrord`: duplex the active memory module into the spare and keep them in lockstep. The flags
/// are declared here; what they do is ``MirrordRunner``'s.
package struct MirrordCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "mirrord",
        abstract: "Duplex a busy active memory module into a spare and keep them in lockstep.",
        discussion: """
            Without --once, mirrord runs as a daemon (a systemd Type=notify service): it duplexes, \
            then keeps the pair fault tolerant (lockstep, scrub, failover, re-duplex) until SIGTERM, \
            answering mirrorctl on its control socket; SIGHUP re-reads the configuration file. With --once it duplexes once and exits 0 when the spare was \
            verified equal to the active module. Without --config, the built-in \
            defaults serve (the same as config/mirrord.conf). Keys can be overridden with \
            MIRRORD_<SECTION>_<KEY> environment variables.

            Exit status: \(MirrordRunner.ExitStatus.summary).
            """,
        version: MirrordVersion.string,
        subcommands: [TakeoverCommand.self, StandbyCommand.self, ProbeCommand.self, ConfManualCommand.self])

    @Option(name: .long, help: ArgumentHelp("Read the configuration from this file.", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Duplex once, print the result and exit (0 when duplexed and verified).")
    var once = false

    @Flag(name: .long, help: "With --once: print the summary as one JSON object on stdout.")
    var json = false

    @Flag(
        name: .customLong("spare-later"),
        help: ArgumentHelp(
            "Reach memory.spare once the CPUs run, retrying while its host is away, instead of refusing to start without it.",
            discussion:
                "For a cluster agent that starts the machine anew while the peer host is down: the machine runs simplex until the peer's export answers, then syncs to it, unless the export holds a committed epoch (nothing compared it with this machine: it stays simplex and says so)."
        ))
    var spareLater = false

    @Option(
        name: .customLong("check-config"),
        help: ArgumentHelp(
            "Check a configuration file and exit: 0 when valid, 1 with PATH:LINE: key: message.",
            valueName: "path"))
    var checkConfig: String?

    package init() {}

    /// What the process does before anything else: the start-up signal handlers go in (so that
    /// no SIGTERM, SIGINT or SIGHUP kills it before the service's own are in place), and a thread
    /// limit that leaves no room for any machine ends it with exit status 69 and one line, before
    /// the Swift runtime starts its thread pool (which, refused a thread, would retry forever).
    package static func prepareProcess() {
        MirrordRunner.installStartupSignalHandlers()
        if let refusal = MirrordRunner.startupRefusal() {
            MirrordRunner.printError("mirrord: \(refusal)")
            Glibc.exit(MirrordRunner.ExitStatus.unavailable.rawValue)
        }
    }

    /// Why these flags cannot go together, if they cannot. Checked by `run()`, not in
    /// `validate()`: ArgumentParser validates this command also when a subcommand such as
    /// `conf-manual` runs.
    package var refusedCombination: ValidationError? {
        if json && !once { return ValidationError("--json goes with --once") }
        if checkConfig != nil && (once || config != nil || spareLater) {
            return ValidationError("--check-config PATH runs alone; drop --once, --config and --spare-later")
        }
        if spareLater && once { return ValidationError("--spare-later goes with the daemon, not --once") }
        return nil
    }

    package func run() async throws {
        if let refusedCombination { throw refusedCombination }
        let environment = ProcessEnvironment.current
        let status =
            if let path = checkConfig {
                MirrordRunner.checkConfiguration(at: path, environment: environment)
            } else {
                await MirrordRunner.run(
                    configPath: config, once: once, json: json, environment: environment, spareLater: spareLater)
            }
        if status != .success { throw ExitCode(status.rawValue) }
    }
}
