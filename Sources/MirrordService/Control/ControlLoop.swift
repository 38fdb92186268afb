import Foundation
import Logging
import MirrorCore
import MirrordControl

#if canImport(Glibc)
import Glibc
#endif

/// The control server's thread: its clients and their buffers, served with `poll(2)`.
struct ControlLoop {
    /// One connection and what is in flight on it.
    struct Client {
        /// The peer is root, which may take the place kept for it.
        var isRoot: Bool
        /// Bytes read and not yet answered: whole lines waiting, then a line begun.
        var input: [UInt8] = []
        /// Replies not yet sent.
        var output: [UInt8] = []
        /// When the client last sent or read something.
        var lastActive = MonotonicClock.nanoseconds()
        /// When the line begun in ``input`` (with no newline yet) began, or nil.
        var lineBegan: UInt64?
        /// The peer shut down its sending side: its lines are answered, then the connection closes.
        var inputClosed = false
        /// Close once ``output`` is sent (after an error that ends the connection).
        var closeWhenSent = false
        /// The client asked `watch`: when the daemon stops it gets one last status.
        var isWatching = false

        /// ``input`` holds a whole line.
        var hasLine: Bool { input.contains(UInt8(ascii: "\n")) }
    }

    /// The listening socket.
    let listener: Int32
    /// The read end of the pipe that says stop.
    let wake: Int32
    /// `control.group`.
    let group: String
    /// The daemon's logger.
    let logger: Logger
    /// The limits on each client.
    let limits: ControlLimits
    /// Who is at the other end of an accepted connection.
    let peerCredentials: @Sendable (Int32) -> PeerCredentials?
    /// Answers a request.
    let handle: @Sendable (ControlRequest) -> ControlReply
    /// The number of clients, for others to read.
    let connected: ControlServer.Counter
    /// The clients, by descriptor.
    var clients: [Int32: Client] = [:] {
        didSet { connected.set(clients.count) }
    }
    /// Accepting pauses until then after the process ran out of descriptors.
    var pausedUntil: UInt64 = 0
    /// Which refusals are journalled.
    var refusals: RefusalLog

    /// The loop of a server that has opened `listener`.
    init(
        listener: Int32, wake: Int32, group: String, logger: Logger, limits: ControlLimits,
        peerCredentials: @escaping @Sendable (Int32) -> PeerCredentials?,
        handle: @escaping @Sendable (ControlRequest) -> ControlReply,
        connected: ControlServer.Counter
    ) {
        self.connected = connected
        self.listener = listener
        self.wake = wake
        self.group = group
        self.logger = logger
        self.limits = limits
        self.peerCredentials = peerCredentials
        self.handle = handle
        self.refusals = RefusalLog(intervalNanoseconds: limits.refusalLogIntervalNanoseconds)
    }

    /// Serves until the wake pipe is written (or poll fails); then closes every connection.
    mutating func run() {
        defer { for fd in clients.keys { close(fd) } }
        while true {
            var fds = [
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            ]
            let order = Array(clients.keys)
            for fd in order {
                let client = clients[fd]!
                // A client with a megabyte of replies unread is not read from until it reads them.
                let reading = !client.inputClosed && client.output.count < limits.maximumPendingOutput
                let events = (reading ? Int16(POLLIN) : 0) | (client.output.isEmpty ? 0 : Int16(POLLOUT))
                fds.append(pollfd(fd: fd, events: events, revents: 0))
            }
            if MonotonicClock.nanoseconds() < pausedUntil { fds[1].events = 0 }
            // Wakes every second for the idle limit, and more often while a request line is timed.
            let timed = clients.values.contains { $0.lineBegan != nil }
            let timeout = timed ? Int32(min(max(limits.requestNanoseconds / 4_000_000, 1), 100)) : 1_000
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR {
                logger.error(
                    "control socket: poll failed (\(String(cString: strerror(errno)))); the control socket stops serving",
                    metadata: ["mirrord_state": "control"])
                return
            }
            if fds[0].revents != 0 {
                farewell()
                return
            }
            if fds[1].revents & Int16(POLLIN) != 0 { acceptAll() }
            for (index, fd) in order.enumerated() {
                let events = fds[index + 2].revents
                guard let client = clients[fd] else { continue }
                if events & Int16(POLLIN) != 0 || (!client.inputClosed && events & Int16(POLLHUP | POLLERR) != 0) {
                    read(fd)
                }
                if clients[fd] != nil && events & Int16(POLLOUT | POLLHUP | POLLERR) != 0 { flush(fd) }
            }
            enforceDeadlines(now: MonotonicClock.nanoseconds())
        }
    }

    /// Drops the clients idle too long, and those whose request line is overdue (telling them);
    /// journals the refusals counted in intervals that ended.
    private mutating func enforceDeadlines(now: UInt64) {
        for (fd, client) in clients {
            if let began = client.lineBegan, now &- began > limits.requestNanoseconds {
                say(
                    fd,
                    Self.refusal(
                        "request not complete within \(Self.seconds(limits.requestNanoseconds)); closing the connection"
                    ))
                drop(fd)
            } else if now &- client.lastActive > limits.idleNanoseconds {
                drop(fd)
            }
        }
        journalSuppressedRefusals(now: now)
    }

    /// `5 s`, `0.2 s`.
    private static func seconds(_ nanoseconds: UInt64) -> String {
        let value = Double(nanoseconds) / 1e9
        return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    private mutating func journalSuppressedRefusals(now: UInt64) {
        for suppressed in refusals.ended(at: now) {
            logger.warning(
                "control socket: refused uid \(suppressed.uid) \(suppressed.count) more times in \(Self.seconds(refusals.intervalNanoseconds)) (journalled once per interval)",
                metadata: ["mirrord_state": "control"])
        }
    }

    private mutating func acceptAll() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else {
                if errno == EMFILE || errno == ENFILE {
                    // Out of descriptors: stop accepting for a moment rather than spin.
                    pausedUntil = MonotonicClock.nanoseconds() + 100_000_000
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let peer = peerCredentials(fd)
            guard let peer, peer.isAllowed(group: group) else {
                refuse(fd, peer)
                continue
            }
            let isRoot = peer.uid == 0
            guard clients.count < (isRoot ? limits.maximumClients : limits.clientsBesidesRoot) else {
                say(fd, Self.refusal("busy: \(clients.count) clients are connected; try again"))
                close(fd)
                continue
            }
            clients[fd] = Client(isRoot: isRoot)
        }
    }

    /// Tells a peer that may not connect so, closes it, and journals it (the first refusal of
    /// its uid in an interval; the others are counted).
    private mutating func refuse(_ fd: Int32, _ peer: PeerCredentials?) {
        let now = MonotonicClock.nanoseconds()
        journalSuppressedRefusals(now: now)
        if refusals.refused(uid: peer?.uid ?? uid_t.max, at: now) {
            let who = peer.map { "uid \($0.uid), pid \($0.pid)" } ?? "an unknown peer"
            logger.warning(
                "control socket: refused \(who): only root, the daemon's own user\(group.isEmpty ? "" : " and members of group \(group)") may connect (further refusals of this uid in \(Self.seconds(refusals.intervalNanoseconds)) are counted, not journalled)",
                metadata: ["mirrord_state": "control"])
        }
        say(
            fd,
            Self.refusal(
                "permission denied: only root\(group.isEmpty ? "" : " and members of group \(group)") may use the control socket"
            ))
        close(fd)
    }

    /// Writes `reply` and its newline without waiting (a refused or busy client gets it if its
    /// buffer has room).
    private func say(_ fd: Int32, _ reply: Data) {
        let line = reply + Data("\n".utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }

    private mutating func read(_ fd: Int32) {
        guard var client = clients[fd] else { return }
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
        if count < 0 {
            if errno != EAGAIN && errno != EINTR { drop(fd) }
            return
        }
        if count == 0 {
            // A half-close: every request sent is still answered (a last line without its
            // newline too), then the connection closes.
            client.inputClosed = true
            if !client.closeWhenSent && !client.input.isEmpty && !client.hasLine {
                client.input.append(UInt8(ascii: "\n"))
            }
        } else if !client.closeWhenSent {
            client.lastActive = MonotonicClock.nanoseconds()
            client.input.append(contentsOf: chunk[0..<count])
        }
        clients[fd] = client
        answer(fd)
        flush(fd)
    }

    /// Answers the whole lines read, in order, while fewer than
    /// ``ControlLimits/maximumPendingOutput`` bytes of replies wait; the rest wait for the client
    /// to read. A line begun is timed; one longer than ``ControlLimits/maximumLine`` ends the
    /// connection.
    private mutating func answer(_ fd: Int32) {
        guard var client = clients[fd], !client.closeWhenSent else { return }
        // Each line is answered in order; what was answered is removed once, after the loop.
        var start = 0
        while client.output.count < limits.maximumPendingOutput,
            let newline = client.input[start...].firstIndex(of: UInt8(ascii: "\n"))
        {
            let line = Data(client.input[start..<newline])
            start = newline + 1
            let reply: ControlReply
            do throws(ControlRequestError) {
                let request = try ControlRequest(line: line)
                if request == .watch { client.isWatching = true }
                reply = handle(request)
            } catch {
                reply = .refused(ControlRefusal(error: error.description))
            }
            client.output.append(contentsOf: ControlCoding.line(for: reply))
            client.output.append(UInt8(ascii: "\n"))
        }
        client.input.removeFirst(start)
        if client.input.isEmpty || client.hasLine {
            client.lineBegan = nil
        } else if client.lineBegan == nil {
            client.lineBegan = MonotonicClock.nanoseconds()
        }
        if !client.hasLine && client.input.count > limits.maximumLine {
            client.input = []
            client.lineBegan = nil
            client.output.append(contentsOf: Self.refusal("request longer than \(limits.maximumLine) bytes"))
            client.output.append(UInt8(ascii: "\n"))
            client.closeWhenSent = true
        }
        clients[fd] = client
    }

    private mutating func flush(_ fd: Int32) {
        guard var client = clients[fd] else { return }
        if !client.output.isEmpty {
            let sent = client.output.withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno != EAGAIN && errno != EINTR {
                drop(fd)
                return
            }
            if sent > 0 {
                client.output.removeFirst(sent)
                client.lastActive = MonotonicClock.nanoseconds()
            }
        }
        clients[fd] = client
        // Room for replies again: the lines that waited are answered.
        if client.hasLine && client.output.count < limits.maximumPendingOutput {
            answer(fd)
            client = clients[fd]!
        }
        let finished = client.inputClosed && !client.hasLine
        if client.output.isEmpty && (client.closeWhenSent || finished) { drop(fd) }
    }

    /// The daemon stops: the lines read are answered, a client that watches gets one last
    /// status (the final state, and why), and what is owed is sent while the clients read it,
    /// for ``ControlLimits/farewellNanoseconds`` at most. The connections are closed after.
    private mutating func farewell() {
        for fd in Array(clients.keys) {
            answer(fd)
            guard var client = clients[fd], !client.closeWhenSent else { continue }
            client.input = []
            client.inputClosed = true
            if client.isWatching {
                client.output.append(contentsOf: ControlCoding.line(for: handle(.watch)))
                client.output.append(UInt8(ascii: "\n"))
            }
            client.closeWhenSent = true
            clients[fd] = client
        }
        let deadline = MonotonicClock.nanoseconds() + limits.farewellNanoseconds
        while true {
            for fd in Array(clients.keys) { flush(fd) }
            let owed = clients.keys.filter { !clients[$0]!.output.isEmpty }
            let now = MonotonicClock.nanoseconds()
            guard !owed.isEmpty, now < deadline else { return }
            var fds = owed.map { pollfd(fd: $0, events: Int16(POLLOUT), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), Int32(min((deadline - now) / 1_000_000 + 1, 1_000)))
        }
    }

    private mutating func drop(_ fd: Int32) {
        clients[fd] = nil
        close(fd)
    }

    /// An error reply's line (without its newline).
    static func refusal(_ text: String) -> Data {
        ControlCoding.line(for: .refused(ControlRefusal(error: text)))
    }
}
