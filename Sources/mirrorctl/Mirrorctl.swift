import ArgumentParser
import Foundation
import MirrordControl

#if canImport(Glibc)
import Glibc
#endif

/// `mirrorctl`: asks a running mirrord through its control socket where it stands, follows a
/// duplex, and carries out the operator's actions of fault tolerance in service.
///
/// Every command names itself (`commandName`): a name derived from the type costs each start a
/// scan of the static binary's protocol conformances (about a quarter of its CPU time), and a
/// promote's `take-over` is on a switch-over's path.
@main
struct Mirrorctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirrorctl",
        abstract: "Query and drive a running mirrord through its control socket.",
        discussion: """
            Exit statuses: 0 done; 1 the daemon refused the request; 2 take-over: this host's export \
            is not known to be the newest (compare, then ask with --compared); 64 a bad flag; 69 no \
            daemon answers on the socket; 74 the connection broke; 75 take-over --wait-for-go: no go \
            came, nothing was sent, or take-over --told: no go line with the token asked the daemon (it \
            reads no go FIFO, or read no such line within 5 s), ask as usual; 77 not allowed (root, or a member of control.group, only).
            """,
        version: MirrordVersion.string,
        subcommands: [
            Status.self, Watch.self, InjectFault.self, ReplaceSpare.self, Reduplex.self, Scrub.self, TakeOver.self,
        ],
        defaultSubcommand: Status.self)

    /// The flag every subcommand takes.
    struct SocketOption: ParsableArguments {
        @Option(name: .long, help: "The daemon's control socket (control.socket).")
        var socket = "/run/mirrord/control.sock"
    }

    /// Runs `body` with a connection, turning failures into one line and an exit status.
    static func withClient<T>(
        _ options: SocketOption, replySeconds: Int = 10,
        _ body: (inout ControlClient) throws(ControlClient.Failure) -> T
    ) throws -> T {
        do throws(ControlClient.Failure) {
            var client = try ControlClient(path: options.socket, replySeconds: replySeconds)
            defer { client.close() }
            return try body(&client)
        } catch {
            FileHandle.standardError.write(Data("mirrorctl: \(error.description)\n".utf8))
            throw ExitCode(error.status)
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Where the duplex stands: state, pass, dirty frames, throttle, blackouts, modules, configuration."
        )
        @OptionGroup var options: SocketOption
        @Flag(help: "Print the daemon's reply as JSON.") var json = false

        func run() throws {
            let reply = try Mirrorctl.withClient(options) {
                (client: inout ControlClient) throws(ControlClient.Failure) in
                try client.status()
            }
            if json {
                // The reply as the daemon sent it (keys sorted, every documented key), indented.
                let encoder = ControlCoding.encoder()
                encoder.outputFormatting.insert(.prettyPrinted)
                let data = (try? encoder.encode(ControlReply.status(reply))) ?? Data()
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(StatusView(reply).text)
            }
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Follow the duplex live: a progress bar for the full copy and the verify, a line per pass.",
            discussion: """
                It prints the current state at once, then each change. On a terminal the progress redraws in \
                place; piped, it prints plain lines, each as it happens. When the pair fails it prints the \
                final state and why, and exits 1; when mirrord stops, its last state, and exits 0 (74 if the \
                connection broke without one). Ctrl-C stops it.
                """)
        @OptionGroup var options: SocketOption
        @Flag(help: "Exit once the pair is duplexed (with a spare on another host: replicating).")
        var untilDuplexed = false
        @Option(help: "Exit after this many seconds.") var timeout: Double?
        @Option(help: "Milliseconds between two looks (10 to 5000).") var interval = 200

        func validate() throws {
            guard (10...5_000).contains(interval) else {
                throw ValidationError("--interval must be from 10 to 5000 ms")
            }
            if let timeout, !(timeout > 0 && timeout < 1e7) {
                throw ValidationError("--timeout must be a positive number of seconds")
            }
        }

        func run() throws {
            let deadline = timeout.map { Date().addingTimeInterval($0) }
            let terminal = isatty(STDOUT_FILENO) == 1
            var view = WatchView(terminal: terminal)
            // A daemon that is starting (building its machine) opens its socket in a moment: wait.
            var said = false
            while deadline.map({ Date() < $0 }) ?? true {
                do throws(ControlClient.Failure) {
                    try ControlClient(path: options.socket).close()
                    break
                } catch  where error.status == 69 {
                    if !said {
                        FileHandle.standardError.write(
                            Data("mirrorctl: waiting for mirrord at \(options.socket) …\n".utf8))
                    }
                    said = true
                    usleep(useconds_t(interval) * 1_000)
                } catch {
                    break  // withClient below reports it
                }
            }
            defer { view.finish() }
            try Mirrorctl.withClient(options) { (client: inout ControlClient) throws(ControlClient.Failure) in
                var last: StatusReply?
                while true {
                    let reply: StatusReply
                    do throws(ControlClient.Failure) {
                        reply = try client.status(watching: true)
                    } catch  where error.status == 74 && last != nil {
                        // The daemon went away: its last status (sent as it stopped) says how.
                        guard let last, last.state == .stopping else {
                            throw ControlClient.Failure(
                                description:
                                    "\(error.description); the last state seen: \(last.map { "\($0.state.rawValue): \($0.status)" } ?? "none")",
                                status: 74)
                        }
                        view.finish()
                        FileHandle.standardError.write(Data("mirrorctl: mirrord stopped (\(last.status))\n".utf8))
                        return
                    }
                    last = reply
                    view.show(StatusView(reply))
                    if reply.state == .failed {
                        view.finish()
                        throw ControlClient.Failure(description: "the pair failed: \(reply.status)", status: 1)
                    }
                    // A spare on another host is never duplexed: replicating is its protected state.
                    if untilDuplexed && (reply.state == .duplexed || reply.state == .replicating) { break }
                    if let deadline, Date() >= deadline { break }
                    usleep(useconds_t(interval) * 1_000)
                }
            }
        }
    }

    struct InjectFault: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inject-fault", abstract: "Raise a module fault, as the hardware would (a drill).")
        @OptionGroup var options: SocketOption
        @Argument(help: "The kind of fault.") var kind: FaultKind
        @Option(help: "The module it happens on.") var module = FaultModule.active
        @Option(help: "The frame of an uncorrectable or correctable error.") var frame = 0

        func validate() throws {
            guard frame >= 0 else { throw ValidationError("--frame must not be negative") }
        }

        func run() throws {
            try Mirrorctl.act(options, .injectFault(FaultInjection(kind: kind, module: module, frame: frame)))
        }
    }

    struct ReplaceSpare: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replace-spare", abstract: "Install a replacement spare after a module was removed.")
        @OptionGroup var options: SocketOption
        func run() throws { try Mirrorctl.act(options, .replaceSpare) }
    }

    struct Reduplex: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reduplex", abstract: "Duplex the installed spare while simplex.")
        @OptionGroup var options: SocketOption
        func run() throws { try Mirrorctl.act(options, .reduplex) }
    }

    struct Scrub: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scrub", abstract: "Compare the next slice of memory now (while duplexed).")
        @OptionGroup var options: SocketOption
        func run() throws { try Mirrorctl.act(options, .scrub) }
    }

    struct TakeOver: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "take-over",
            abstract: "Tell a takeover waiting to be asked (mirrord takeover --on-request) to take over now.",
            discussion: """
                Returns once the machine's CPUs run, printing the epoch taken over and takeover_ms \
                (from the request), or exits 1 with the daemon's reason (an export with no committed \
                epoch, a damaged journal, a start that cannot be recorded, …). With --start-record, \
                the takeover goes on only when this host's export is known to be the newest (its sync \
                generation past the start recorded there) or --compared, and records the start there \
                first; otherwise exit 2, and it keeps waiting. With --wait-for-go it is started ahead \
                (its own start off the caller's path) and sends the request only once the line "go" \
                comes on standard input; any other line, its end, or none within 10 s: exit 75, \
                nothing sent. With --told TOKEN it asks nothing: the takeover was told to go by the \
                line "go TOKEN" on its go FIFO (mirrord takeover --go-fifo), and this waits for that \
                takeover's outcome, with the same output and exit statuses (75: no such line asked \
                the daemon: it reads no go FIFO, or read none within 5 s).
                """)
        @OptionGroup var options: SocketOption
        @Option(
            name: .customLong("start-record"),
            help: ArgumentHelp("The record of this host's machine starts (an absolute path).", valueName: "path"))
        var startRecord: String?
        @Flag(help: "This host's export was compared with the peer's and is not older.") var compared = false
        @Flag(
            name: .customLong("wait-for-go"),
            help: "Send the request only once the line \"go\" comes on standard input (within 10 s).")
        var waitForGo = false
        @Option(
            help: ArgumentHelp(
                "Ask nothing: wait for the outcome of the takeover the line \"go TOKEN\" on its go FIFO told to go.",
                valueName: "token"))
        var told: String?

        func validate() throws {
            if let startRecord, !startRecord.hasPrefix("/") {
                throw ValidationError("--start-record \(startRecord): an absolute path")
            }
            if let told {
                guard TakeoverRequest.isToken(told) else {
                    throw ValidationError("--told \(told): a go line's token, 1 to 64 of A-Z a-z 0-9 . _ -")
                }
                if startRecord != nil || compared {
                    throw ValidationError(
                        "--told asks nothing (the go FIFO's takeover records its start where it was started to): drop --start-record and --compared"
                    )
                }
            }
        }

        /// How long `--wait-for-go` waits for its line: the caller's path to it takes milliseconds.
        static let goSeconds: Int32 = 10

        func run() throws {
            if waitForGo {
                var input = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
                var ready: Int32
                repeat { ready = poll(&input, 1, Self.goSeconds * 1_000) } while ready < 0 && errno == EINTR
                let pollError = ready < 0 ? errno : 0
                let line = ready > 0 ? readLine() : nil
                guard line == "go" else {
                    let why =
                        ready == 0
                        ? "none within \(Self.goSeconds) s"
                        : ready < 0
                            ? "cannot wait for it: \(String(cString: strerror(pollError)))"
                            : line.map { "\"\($0)\"" } ?? "its end"
                    FileHandle.standardError.write(
                        Data("mirrorctl: take-over not sent: no go on standard input (\(why))\n".utf8))
                    throw ExitCode(75)
                }
            }
            // The reply comes once the CPUs run: a replay of a whole journal half may take a while.
            let request =
                told.map { TakeoverRequest(told: $0) } ?? TakeoverRequest(startRecord: startRecord, compared: compared)
            try Mirrorctl.act(options, .takeOver(request), replySeconds: TakeoverRequest.replySeconds)
        }
    }

    /// Sends an action and prints what the daemon took in.
    static func act(_ options: SocketOption, _ request: ControlRequest, replySeconds: Int = 10) throws {
        let reply = try withClient(options, replySeconds: replySeconds) {
            (client: inout ControlClient) throws(ControlClient.Failure) in
            try client.act(request)
        }
        print("\(reply.action.rawValue): \(reply.what)")
    }
}

/// `inject-fault`'s KIND: one of the protocol's fault kinds, listed in `--help` and completions.
extension FaultKind: ExpressibleByArgument {}

/// `inject-fault --module`: active or spare, listed in `--help` and completions.
extension FaultModule: ExpressibleByArgument {}
