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
/// A `Service` of the daemon's group: ``init(path:group:logger:limits:peerCredentials:handle:)``
/// opens the socket (so that a daemon that cannot open it runs on without it), ``run()`` serves
/// until the group shuts down, then closes every connection and removes the socket. The runner
/// lists it first, so the group stops it last: the socket answers while the duplex service stops.
///
/// Only root, the daemon's user and members of `control.group` can reach it: the socket is 0600
/// (0660 and of that group when one is configured) in a directory of 0750. The peer's
/// credentials (`SO_PEERCRED`) are checked too: anyone else gets an error line, the connection is
/// closed, and the refusal is journalled (the first of each uid per interval, then a count).
///
/// One thread of its own serves every client with `poll(2)`, so a slow, silent or hostile client
/// never holds up another or the duplex: a line longer than ``ControlLimits/maximumLine`` gets an
/// error and the connection is closed, a request line not complete within
/// ``ControlLimits/requestNanoseconds`` too, clients past ``ControlLimits/maximumClients`` get
/// `busy` (the last place is root's), a client idle for ``ControlLimits/idleNanoseconds`` is
/// dropped. A client that shuts down its sending side still gets the reply to every request it
/// sent before the connection is closed.
final class ControlServer: Service, Sendable {
    /// The longest request line read (the daemon's ``ControlLimits``).
    static let maximumLine = ControlLimits().maximumLine
    /// Clients served at once (the daemon's ``ControlLimits``).
    static let maximumClients = ControlLimits().maximumClients

    /// The socket's path.
    let path: String
    private let listener: Int32
    /// The pipe that wakes the server to stop.
    private let wake: WakePipe
    private let group: String
    private let logger: Logger
    private let limits: ControlLimits
    private let peerCredentials: @Sendable (Int32) -> PeerCredentials?
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
        /// The count now.
        var value: Int { count.load(ordering: .acquiring) }
        /// Sets the count.
        func set(_ value: Int) { count.store(value, ordering: .releasing) }
    }

    /// Opens the socket at `path` (its directory is created 0750 if missing; a stale socket there
    /// is replaced), 0600, or 0660 and of `group` when one is given; ``run()`` serves it. `handle`
    /// answers each request on the server's thread and must return quickly. Until then, clients
    /// that connect wait in the listen queue. `limits` and `peerCredentials` (who is at the other
    /// end of a connection) are the daemon's unless a test gives its own.
    init(
        path: String, group: String, logger: Logger, limits: ControlLimits = ControlLimits(),
        peerCredentials: @escaping @Sendable (Int32) -> PeerCredentials? = { PeerCredentials(socket: $0) },
        handle: @escaping @Sendable (ControlRequest) -> ControlReply
    ) throws(ControlServerError) {
        self.path = path
        self.group = group
        self.logger = logger
        self.limits = limits
        self.peerCredentials = peerCredentials
        self.handle = handle
        func failure(_ operation: String) -> ControlServerError {
            ControlServerError(operation: operation, reason: String(cString: strerror(errno)))
        }
        let directory = (path as NSString).deletingLastPathComponent
        let created = !directory.isEmpty && mkdir(directory, 0o750) == 0
        if !directory.isEmpty && !created && errno != EEXIST {
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
        Self.restrictAccess(to: path, directory: created ? directory : nil, group: group, logger: logger)
        guard listen(listener, 64) == 0 else {
            let error = failure("listen on \(path)")
            close(listener)
            unlink(path)
            throw error
        }
        do throws(WakePipe.Failure) {
            self.wake = try WakePipe()
        } catch {
            close(listener)
            unlink(path)
            throw ControlServerError(operation: "pipe", reason: error.reason)
        }
        self.listener = listener
        self.connected = Counter()
    }

    /// Makes the socket at `path` 0600, or 0660 and of `group` when one is given (and the
    /// directory the server created, `directory`, of that group too): only root, the daemon's
    /// user and the group's members can connect at all. A group the daemon cannot give the socket
    /// to (unknown, or one its user is not a member of) is journalled, and the socket stays 0600.
    private static func restrictAccess(to path: String, directory: String?, group: String, logger: Logger) {
        chmod(path, 0o600)
        guard !group.isEmpty else { return }
        guard let entry = getgrnam(group) else {
            logger.warning(
                "control socket: no group \(group) (control.group): only root and mirrord's own user may connect",
                metadata: ["mirrord_state": "control"])
            return
        }
        let gid = entry.pointee.gr_gid
        guard chown(path, uid_t.max, gid) == 0 else {
            logger.warning(
                "control socket: cannot give it to group \(group) (\(String(cString: strerror(errno)))); only root and mirrord's own user may connect (the unit needs SupplementaryGroups=\(group))",
                metadata: ["mirrord_state": "control"])
            return
        }
        chmod(path, 0o660)
        if let directory { _ = chown(directory, uid_t.max, gid) }
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

    /// Serves from now on, before any service group runs (a takeover waiting to be asked); the
    /// caller then stops it (``stop()``), or ``run()`` does at the group's shutdown.
    func serveNow() throws(ControlServerError) {
        try startServing()
    }

    /// Starts the serving thread, unless the server serves already or was stopped.
    private func startServing() throws(ControlServerError) {
        let (listener, wake, group, logger, handle, connected) = (
            self.listener, self.wake, self.group, self.logger, self.handle, self.connected
        )
        let (limits, peerCredentials) = (self.limits, self.peerCredentials)
        try phase.withLock { (phase: inout Phase) throws(ControlServerError) in
            guard case .opened = phase else { return }
            do throws(ThreadCreationError) {
                let thread = try WorkerThread(name: "mirrord-control") {
                    var loop = ControlLoop(
                        listener: listener, wake: wake.readEnd, group: group, logger: logger, limits: limits,
                        peerCredentials: peerCredentials, handle: handle, connected: connected)
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
            wake.wake()
            thread.join()
        case .opened:
            break
        }
        close(listener)
        wake.close()
        unlink(path)
    }
}
