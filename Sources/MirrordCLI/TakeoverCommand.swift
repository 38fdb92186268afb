import ArgumentParser
import MirrorCore
import MirrordConfig
import MirrordService

/// `mirrord takeover`: on the backup host, after the primary host died, bring the spare's export
/// to its last committed epoch and run the machine from it, simplex, as the service does (until
/// SIGTERM). Decided by an operator or a cluster manager, never by mirrord itself.
package struct TakeoverCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "takeover",
        abstract: "Take over from a dead primary: run the machine from the export's last committed epoch.",
        discussion: """
            Run on the spare's host after the primary host died, with the primary's configuration \
            file. The export (the image file behind this host's nbd-server with --image, or its NBD \
            URI with --export) is brought to its last committed epoch: every committed epoch not yet \
            in place is replayed from the journal, each frame checked against its checksum first; \
            this host becomes the export's owner, so the former primary is refused if it comes back. \
            Then the machine runs from that memory, simplex (no spare), as the service does until \
            SIGTERM: from --image the file is mapped copy-on-write (no copy; the file keeps the \
            taken-over epoch), from --export the image is read into memory. It prints the epoch, the \
            frames replayed and takeover_ms (the command's start to the CPUs running).

            With --on-request it starts ahead and waits, reading nothing, until `mirrorctl take-over` \
            asks on control.socket (status: waiting; READY=1 under systemd); that request's reply \
            comes once the CPUs run (takeover_ms from the request) or says why it was refused, and \
            the process then goes on as above (refused: it exits 1). SIGTERM while waiting: exit 0, \
            nothing read or changed. With --go-fifo it is also told to go by the line "go TOKEN" \
            written to that FIFO (by a shell's builtin: no client process on the way), as \
            `mirrorctl take-over --start-record` would ask with --start-record's path; the outcome \
            goes to `mirrorctl take-over --told TOKEN`.

            Refused in one line, with nothing changed: a missing file, an export that holds no \
            committed epoch (the primary died during its first sync), a damaged journal, an image \
            whose frame size or count differs from memory.size. Exit status: 0 stopped on request \
            (or recovered, with --recover-only); 1 refused or failed; 64 bad flags; 69 the machine \
            does not fit; 75 another mirrord holds memory.state_dir; 78 configuration rejected.
            """)

    @Option(
        name: .long, help: ArgumentHelp("Read the configuration from this file (the primary's).", valueName: "path"))
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp("The export's image file, behind this host's nbd-server (no copy).", valueName: "path"))
    var image: String?

    @Option(name: .long, help: ArgumentHelp("The export's NBD URI (the image is read over NBD).", valueName: "uri"))
    var export: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The primary's staging area (the largest epoch), which sizes the journal; the export must agree.",
            valueName: "size"))
    var staging = ByteCount.format(TakeoverOptions.defaultStagingBytes)

    @Flag(name: .customLong("recover-only"), help: "Stop after the recovery: print the epoch and exit 0.")
    var recoverOnly = false

    @Flag(
        name: .customLong("on-request"),
        help: "Start now, take over when asked: wait for `mirrorctl take-over` on control.socket.")
    var onRequest = false

    @Option(
        name: .customLong("go-fifo"),
        help: ArgumentHelp(
            "With --on-request: also take over when the line \"go TOKEN\" comes on this FIFO.", valueName: "path"))
    var goFIFO: String?

    @Option(
        name: .customLong("start-record"),
        help: ArgumentHelp(
            "With --go-fifo: where a takeover told to go records its start (as take-over's).", valueName: "path"))
    var startRecord: String?

    /// `mirrord` itself: a `--config` given after `takeover` is parsed as its option.
    @ParentCommand var parent: MirrordCommand

    package init() {}

    /// The takeover's options from the flags, or why they do not make one.
    package func options(startedAt: UInt64 = MonotonicClock.nanoseconds()) throws(ValidationError)
        -> TakeoverOptions
    {
        let source: TakeoverOptions.Source
        switch (image, export) {
        case (let path?, nil): source = .image(path: path)
        case (nil, let uri?): source = .export(uri: uri)
        case (nil, nil): throw ValidationError("give the export: --image PATH or --export URI")
        case (_?, _?): throw ValidationError("--image and --export name the same export: give one")
        }
        if onRequest && recoverOnly {
            throw ValidationError("--on-request waits to run the machine; --recover-only runs none: give one")
        }
        if goFIFO != nil && !onRequest {
            throw ValidationError("--go-fifo tells a takeover that waits to go: give --on-request too")
        }
        if let goFIFO, !goFIFO.hasPrefix("/") {
            throw ValidationError("--go-fifo \(goFIFO): an absolute path")
        }
        if startRecord != nil && goFIFO == nil {
            throw ValidationError(
                "--start-record is where a takeover told through --go-fifo records its start: give --go-fifo too")
        }
        if let startRecord, !startRecord.hasPrefix("/") {
            throw ValidationError("--start-record \(startRecord): an absolute path")
        }
        guard let bytes = ByteCount.parse(staging), bytes > 0, bytes % EmulatedFrame.size == 0 else {
            throw ValidationError("--staging \(staging): a size of whole 4KiB frames, like \"256MiB\"")
        }
        return TakeoverOptions(
            source: source, stagingBytes: bytes, recoverOnly: recoverOnly, onRequest: onRequest, goFIFO: goFIFO,
            goStartRecord: startRecord, startedAt: startedAt)
    }

    package func run() async throws {
        let startedAt = MonotonicClock.nanoseconds()
        let options = try options(startedAt: startedAt)
        let status = await MirrordRunner.run(
            configPath: config ?? parent.config, once: false, json: false, environment: ProcessEnvironment.current,
            takeover: options)
        if status != .success { throw ExitCode(status.rawValue) }
    }
}

/// The frame size every machine uses.
private enum EmulatedFrame {
    static let size = MemoryGeometry.standardFrameSize
}
