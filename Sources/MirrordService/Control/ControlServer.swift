import Foundation
import Logging
import MirrorCore
import MirrordControl
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control socket: a Unix stream socket on which `mirrorctl` (or any client) sends one JSON
/// request per line and reads one JSON reply per line (docs/control.md, MirrordControl's types).
///
/// A `Service` of the daemon's group: ``init(path:group:logger:handle:)`` opens the socket (so
/// that a daemon that cannot open it runs on without it), ``run()`` serves until the group shuts
/// down, then closes every connection and removes the socket. The runner lists it first, so the
/// group stops it last: the socket answers while the duplex service stops.
///
/// One thread of its own serves every client with `poll(2)`, so a slow, silent or hostile client
/// never holds up another or the duplex: a line longer than ``maximumLine`` gets an error and the
/// connection is closed, clients past ``maximumClients`` get `busy`, a client idle (or not
/// reading its replies) for ``idleNanoseconds`` is dropped. Only root, the daemon's user and
/// members of `control.group` may connect (`SO_PEERCRED`); anyone else gets an error line, the
/// connection is closed, and the refusal is logged.
final class ControlServer: Service, Sendable {
    /// The longest request line read.
    static let maximumLine = 64 << 10
    /// Clients served at once.
    static let maximumClients = 32
    /// Replies kept for a client that does not read them, before it is dropped.
    static let maximumPendingOutput = 1 << 20
    /// A client that sends nothing and reads nothing for this long is dropped.
    static let idleNanoseconds: UInt64 = 10_000_000_000

    /// The socket's path.
    let path: String
    private let listener: Int32
    /// The read and write ends of the pipe that wakes the server to stop.
    private let wake: Int32
    private let wakeWriter: Int32
    private let group: String
    private let logger: Logger
    private let handle: @Sendable (ControlRequest) -> ControlReply
    private let connected: Counter
    /// Where the server is in its life: opened, serving (on its thread), or stopped for good.
    private let phase = Mutex(Phase.opened)

    /// The life of the server: ``run()`` moves it from opened to serving, ``stop()`` to stopped
    /// (from either; a server stopped before it ran never serves).
    private enum Phase {
        case opened
        case serving(WorkerThread)
        case stopped
    }

    /// Clients connected now (refused and busy ones are never counted).
    var clientCount: Int { connected.value }

    /// A count the server's thread keeps and others read.
    final class Counter: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .acquiring) }
        func set(_ value: Int) { count.store(value, ordering: .releasing) }
    }

    /// Opens the socket at `path` (its directory is created if missing; a stale socket there is
    /// replaced); ``run()`` serves it. `handle` answers each request on the server's thread and must
    /// return quickly. Until then, clients that connect wait in the listen queue.
    init(path: String, group: String, logger: Logger, handle: @escaping @Sendable (ControlRequest) -> ControlReply)
        throws(ControlServerError)
    {
        self.path = path
        self.group = group
        self.logger = logger
        self.handle = handle
        func failure(_ operation: String) -> ControlServerError {
            ControlServerError(operation: operation, reason: String(cString: strerror(errno)))
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw failure("create \(directory)")
        }
        var info = stat()
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw ControlServerError(operation: "open \(path)", reason: "the path is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
        }
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw ControlServerError(operation: "open \(path)", reason: "a file that is not a socket is in the way")
            }
            // A socket someone still serves is theirs; only one that refuses connections is stale.
            // (The probe does not wait: a live server with a full queue answers EAGAIN.)
            let probe = socket(
                AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard probe >= 0 else { throw failure("socket") }
            let connected =
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                } == 0
            let code = errno
            close(probe)
            guard !connected && code == ECONNREFUSED else {
                throw ControlServerError(
                    operation: "open \(path)", reason: "another process serves this socket (another mirrord?)")
            }
            unlink(path)
        }
        let listener = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listener >= 0 else { throw failure("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let error = failure("bind \(path)")
            close(listener)
            throw error
        }
        // Anyone may connect; the peer's credentials decide who is served, and a refusal is logged.
        chmod(path, 0o666)
        guard listen(listener, 64) == 0 else {
            let error = failure("listen on \(path)")
            close(listener)
            unlink(path)
            throw error
        }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            let error = failure("pipe")
            close(listener)
            unlink(path)
            throw error
        }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        self.listener = listener
        self.wake = ends[0]
        self.wakeWriter = ends[1]
        self.connected = Counter()
    }

    /// Serves until the service group shuts down gracefully (or the task is cancelled), then
    /// stops: every connection closed, the socket removed. A server whose thread cannot start
    /// logs why and leaves the daemon to run without its socket, as one that cannot open it: it
    /// still returns only at shutdown, since a service that returns early ends the group.
    func run() async {
        do throws(ControlServerError) {
            try startServing()
        } catch {
            logger.warning(
                "no control socket (mirrorctl will not reach this daemon): \(error)",
                metadata: ["mirrord_state": "control"])
            stop()
        }
        try? await gracefulShutdown()  // returns on shutdown, throws on cancellation: stop either way
        stop()
    }

    /// Starts the serving thread, unless the server was stopped first.
    private func startServing() throws(ControlServerError) {
        let (listener, wake, group, logger, handle, connected) = (
            self.listener, self.wake, self.group, self.logger, self.handle, self.connected
        )
        try phase.withLock { (phase: inout Phase) throws(ControlServerError) in
            guard case .opened = phase else { return }
            do throws(ThreadCreationError) {
                let thread = try WorkerThread(name: "mirrord-control") {
                    var loop = ControlLoop(
                        listener: listener, wake: wake, group: group, logger: logger, handle: handle,
                        connected: connected)
                    loop.run()
                }
                phase = .serving(thread)
            } catch {
                throw ControlServerError(operation: "start the control thread", reason: error.description)
            }
        }
    }

    /// A server dropped without being run (its group never started) still closes its
    /// descriptors and removes its socket.
    deinit { stop() }

    /// Stops serving, closes every connection and removes the socket. Only the first call acts.
    func stop() {
        let previous = phase.withLock { (phase: inout Phase) -> Phase in
            let previous = phase
            phase = .stopped
            return previous
        }
        switch previous {
        case .stopped:
            return
        case .serving(let thread):
            var one: UInt8 = 1
            _ = write(wakeWriter, &one, 1)
            thread.join()
        case .opened:
            break
        }
        close(listener)
        close(wake)
        close(wakeWriter)
        unlink(path)
    }
}

/// The server thread's state: its clients and their buffers.
private struct ControlLoop {
    struct Client {
        var input: [UInt8] = []
        var output: [UInt8] = []
        var lastActive = MonotonicClock.nanoseconds()
        var closeWhenSent = false
    }

    let listener: Int32
    let wake: Int32
    let group: String
    let logger: Logger
    let handle: @Sendable (ControlRequest) -> ControlReply
    let connected: ControlServer.Counter
    var clients: [Int32: Client] = [:] {
        didSet { connected.set(clients.count) }
    }
    /// Accepting pauses until then after the process ran out of descriptors.
    var pausedUntil: UInt64 = 0

    init(
        listener: Int32, wake: Int32, group: String, logger: Logger,
        handle: @escaping @Sendable (ControlRequest) -> ControlReply,
        connected: ControlServer.Counter
    ) {
        self.connected = connected
        self.listener = listener
        self.wake = wake
        self.group = group
        self.logger = logger
        self.handle = handle
    }

    mutating func run() {
        defer { for fd in clients.keys { close(fd) } }
        while true {
            var fds = [
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            ]
            let order = Array(clients.keys)
            for fd in order {
                let events = Int16(POLLIN) | (clients[fd]!.output.isEmpty ? 0 : Int16(POLLOUT))
                fds.append(pollfd(fd: fd, events: events, revents: 0))
            }
            if MonotonicClock.nanoseconds() < pausedUntil { fds[1].events = 0 }
            let ready = poll(&fds, nfds_t(fds.count), 1_000)
            if ready < 0 && errno != EINTR {
                logger.error(
                    "control socket: poll failed (\(String(cString: strerror(errno)))); the control socket stops serving",
                    metadata: ["mirrord_state": "control"])
                return
            }
            if fds[0].revents != 0 { return }
            if fds[1].revents & Int16(POLLIN) != 0 { acceptAll() }
            for (index, fd) in order.enumerated() {
                let events = fds[index + 2].revents
                if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 { read(fd) }
                if clients[fd] != nil && events & Int16(POLLOUT) != 0 { flush(fd) }
            }
            let now = MonotonicClock.nanoseconds()
            for (fd, client) in clients where now &- client.lastActive > ControlServer.idleNanoseconds { drop(fd) }
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
            let peer = PeerCredentials(socket: fd)
            guard let peer, peer.isAllowed(group: group) else {
                let who = peer.map { "uid \($0.uid), pid \($0.pid)" } ?? "an unknown peer"
                logger.warning(
                    "control socket: refused \(who): only root, the daemon's own user\(group.isEmpty ? "" : " and members of group \(group)") may connect",
                    metadata: ["mirrord_state": "control"])
                say(
                    fd,
                    Self.refusal(
                        "permission denied: only root\(group.isEmpty ? "" : " and members of group \(group)") may use the control socket"
                    ))
                close(fd)
                continue
            }
            guard clients.count < ControlServer.maximumClients else {
                say(fd, Self.refusal("busy: \(ControlServer.maximumClients) clients are connected; try again"))
                close(fd)
                continue
            }
            clients[fd] = Client()
        }
    }

    /// Writes `reply` and its newline without waiting (a refused or busy client gets it if its
    /// buffer has room).
    private func say(_ fd: Int32, _ reply: Data) {
        let line = reply + Data("\n".utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }

    private mutating func read(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            drop(fd)
            return
        }
        guard count > 0, var client = clients[fd], !client.closeWhenSent else { return }
        client.lastActive = MonotonicClock.nanoseconds()
        client.input.append(contentsOf: chunk[0..<count])
        // Each line is answered in order; what was answered is removed once, after the loop.
        var start = 0
        while client.output.count <= ControlServer.maximumPendingOutput,
            let newline = client.input[start...].firstIndex(of: UInt8(ascii: "\n"))
        {
            let line = Data(client.input[start..<newline])
            start = newline + 1
            let reply: ControlReply
            do throws(ControlRequestError) {
                reply = handle(try ControlRequest(line: line))
            } catch {
                reply = .refused(ControlRefusal(error: error.description))
            }
            client.output.append(contentsOf: ControlCoding.line(for: reply))
            client.output.append(UInt8(ascii: "\n"))
        }
        client.input.removeFirst(start)
        if client.input.count > ControlServer.maximumLine {
            client.input = []
            client.output.append(contentsOf: Self.refusal("request longer than \(ControlServer.maximumLine) bytes"))
            client.output.append(UInt8(ascii: "\n"))
            client.closeWhenSent = true
        }
        clients[fd] = client
        flush(fd)
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
        if client.output.count > ControlServer.maximumPendingOutput || (client.closeWhenSent && client.output.isEmpty) {
            drop(fd)
            return
        }
        clients[fd] = client
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
