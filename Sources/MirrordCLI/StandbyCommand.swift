import ArgumentParser
import MirrordService

/// `mirrord standby`: on the spare host, put each epoch the primary commits in place from the
/// export's own file, so that the primary sends every frame over the link once.
package struct StandbyCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "standby",
        abstract: "On the spare host: put each committed epoch in place from the export's file.",
        discussion: """
            Run on the spare host beside the NBD server that exports the image file, when the \
            primary's configuration sets remote.standby = true. The primary then writes each epoch \
            to the export's journal only; the standby checks each frame against its checksum, puts \
            it in place in the image, makes it stable and marks the epoch applied, which the primary \
            reads before it reuses a journal half. A new sync from the primary is acknowledged only \
            after the previous sync's committed epochs are in place. A takeover needs no standby: \
            it replays what is committed and not yet applied (stop the standby first; it holds the \
            file, and a takeover on it is refused while it runs).

            Runs until SIGTERM or SIGINT; after a takeover (by a host reaching the export over NBD) \
            it writes nothing. Exit \
            status: 0 stopped; 1 the file cannot be read or written, or a committed frame failed \
            its checksum; 75 another mirrord process (a standby, a takeover) has the file.
            """)

    @Option(
        name: .long,
        help: ArgumentHelp("The export's image file, as this host's NBD server serves it.", valueName: "path"))
    var image: String

    package init() {}

    package func run() throws {
        let status = StandbyRunner.run(imagePath: image)
        if status != .success { throw ExitCode(status.rawValue) }
    }
}
