import ArgumentParser
import MirrordService

/// `mirrord probe`: print an export's newest committed epoch, its sync generation and its owner,
/// writing nothing; what the resource agent compares between this host's export and the peer's.
package struct ProbeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Print an export's newest committed epoch and sync generation, writing nothing.",
        discussion: """
            Reads the export (an image file with --image, opened read-only; an NBD URI with \
            --export) and prints one line: epoch=E generation=G owner=HOST machine_id=ID pending=N \
            (epoch=none when it holds no committed epoch; generation=0 owner=none for a blank \
            export), or with --json one object. The newest committed epoch is found as a takeover \
            finds it (the newest valid commit record of the header's sync generation); its journalled \
            frames are not read. Of two exports, the one with the larger (generation, epoch) holds \
            the newer memory: a generation is the wall clock of its sync's start. Safe while a \
            primary writes the export: a torn record fails its checksum and the one before counts. \
            An nbds:// export takes its credentials from --config (given before `probe`).

            Exit status: \(ProbeRunner.ExitStatus.summary).
            """)

    @Option(name: .long, help: ArgumentHelp("The export's image file (opened read-only).", valueName: "path"))
    var image: String?

    @Option(name: .long, help: ArgumentHelp("The export's NBD URI.", valueName: "uri"))
    var export: String?

    @Flag(name: .long, help: "Print one JSON object instead of the line.")
    var json = false

    @Option(
        name: .long,
        help: ArgumentHelp("Seconds an NBD server may take to answer before the probe fails.", valueName: "seconds"))
    var timeout = 5.0

    /// `mirrord` itself: a `--config` given before `probe` is parsed as its option.
    @ParentCommand var parent: MirrordCommand

    package init() {}

    /// Whether to print JSON: `--json` after `probe` may be parsed as `mirrord`'s own flag.
    package var printsJSON: Bool { json || parent.json }

    /// The export the flags name, or why they do not name one.
    package func source() throws(ValidationError) -> ProbeRunner.Source {
        switch (image, export) {
        case (let path?, nil): return .image(path: path)
        case (nil, let uri?): return .export(uri: uri)
        case (nil, nil): throw ValidationError("give the export: --image PATH or --export URI")
        case (_?, _?): throw ValidationError("--image and --export name an export each: give one")
        }
    }

    package func validate() throws {
        _ = try source()
        guard timeout > 0, timeout <= 3_600 else {
            throw ValidationError("--timeout \(timeout): seconds, more than 0 and at most 3600")
        }
    }

    package func run() throws {
        let status = ProbeRunner.run(
            try source(), configPath: parent.config, json: printsJSON, timeout: .milliseconds(Int64(timeout * 1_000)))
        if status != .committed { throw ExitCode(status.rawValue) }
    }
}
