import ArgumentParser
import MirrorEmulation
import MirrordConfig
import MirrordService

/// `mirrord-check`: test tools that judge a run from outside mirrord (not installed).
@main
struct MirrordCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirrord-check",
        abstract: "Judge a run of mirrord from its output alone (a test tool; not installed).",
        subcommands: [Released.self])

    /// `mirrord-check released`: whether an image lost a released store.
    struct Released: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a memory image against the release log: no released store lost.",
            discussion: """
                Replays every writer of the machine the configuration describes (the emulated MMU \
                off) against the image, independently of mirrord's bookkeeping: the image must be \
                what each writer leaves after some prefix of its stores, and that prefix must reach \
                the last sequence in the release log. Prints one line; exits 0 when it holds, 1 \
                when it does not, 2 when the check cannot run.
                """)

        @Option(name: .long, help: "The mirrord.conf the machine ran with.")
        var config: String

        @Option(name: .long, help: "The file holding the memory image (a spare's export, a module's image).")
        var image: String

        @Option(name: .long, help: "The byte offset of the image in the file (an export's: 12288).")
        var offset: Int = 0

        @Option(name: .long, help: "The release log the workload appended to.")
        var log: String

        @Flag(name: .long, help: "Require the image to be exactly the memory after the last released sequence.")
        var exact = false

        func run() throws {
            let (line, status) = ReleasedCheck(
                configPath: config, imagePath: image, offset: offset, logPath: log, exact: exact
            ).run()
            if status == 0 {
                print(line)
            } else {
                MirrordRunner.printError(line)
            }
            if status != 0 { throw ExitCode(status) }
        }
    }
}
