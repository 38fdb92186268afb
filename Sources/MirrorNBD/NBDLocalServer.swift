import Foundation

/// A real Debian `nbd-server` on this host, for the tests and `mirrord-bench --only remote`: a
/// sparse file in a fresh temporary directory, exported
/// read-write as `spare` (flush and FUA passed to the file) and read-only as `ro`, on a Unix socket
/// (`unixsock` in `[generic]`, nbd-server 3.24), so parallel tests share no port; or on a TCP port
/// of 127.0.0.1 (nbd-server 3.24 listens on one or the other). With ``NBDTestCertificates`` it
/// serves TLS only (`force_tls`: a client that does not start TLS is refused) and checks the
/// client's certificate against their CA (`cacertfile`).
///
/// It is ready when a connection succeeds, polled under a generous deadline that only detects a
/// hang; it is ended by its PID (from `-p`, which 3.24 honours where `pidfile` in the config is
/// not), never by name.
package final class NBDLocalServer {
    /// The temporary directory holding the socket, the config and the exported file.
    package let directory: URL
    /// The exported file, read directly to check what arrived.
    package let file: URL
    /// The export's size in bytes.
    package let size: Int
    /// The daemon's PID.
    package private(set) var pid: pid_t = 0

    /// The TLS credentials the server uses, nil for none.
    package let certificates: NBDTestCertificates?
    /// The TCP port on 127.0.0.1, nil for the Unix socket.
    package let port: Int?

    /// The read-write export's URI: `nbds` with certificates.
    package var uri: String { uri(export: "spare", tls: certificates != nil) }
    /// The same file exported read-only.
    package var readOnlyURI: String { uri(export: "ro", tls: certificates != nil) }
    /// The read-write export's URI without TLS, which a server with certificates refuses.
    package var plainURI: String { uri(export: "spare", tls: false) }
    /// The credentials a client connects with: the certificates' client directory.
    package var clientTLS: NBDTLS? { certificates.map { .certificates(directory: $0.clientDirectory) } }

    private func uri(export: String, tls: Bool) -> String {
        let scheme = tls ? "nbds" : "nbd"
        if let port { return "\(scheme)://127.0.0.1:\(port)/\(export)" }
        return "\(scheme)+unix:///\(export)?socket=\(directory.path)/nbd.sock"
    }

    /// Starts a server exporting a sparse file of `size` bytes in a fresh directory under `parent`
    /// (the temporary directory; `/dev/shm` keeps the export in memory, as a spare host would);
    /// returns once a client connected. `certificates`: serve TLS only, with these; `tcp`: listen
    /// on a free TCP port of 127.0.0.1 instead of the Unix socket.
    package init(
        size: Int, parent: URL = FileManager.default.temporaryDirectory, certificates: NBDTestCertificates? = nil,
        tcp: Bool = false
    ) throws {
        guard
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/nbd-server")
                || FileManager.default.isExecutableFile(atPath: "/usr/bin/nbd-server")
        else {
            throw NBDLocalServerError("nbd-server is not installed: run scripts/setup.sh test")
        }
        directory = parent.appendingPathComponent(
            "mirrord-nbd-\(getpid())-\(UUID().uuidString.prefix(8))")
        file = directory.appendingPathComponent("spare.img")
        self.size = size
        self.certificates = certificates
        self.port = tcp ? try Self.freePort() : nil
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("conf.d"), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
            throw NBDLocalServerError("cannot create \(file.path)")
        }
        guard truncate(file.path, off_t(size)) == 0 else { throw NBDLocalServerError("truncate: errno \(errno)") }
        // includedir must exist or every export is refused. force_tls in [generic] (FORCEDTLS:
        // nothing but STARTTLS before TLS); nbd-server 3.24 knows no tlsonly, and refuses to start
        // with force_tls in an export's section.
        let listen = port == nil ? "    unixsock = \(directory.path)/nbd.sock\n" : ""
        let tls =
            certificates.map {
                """
                    certfile = \($0.serverCertificate)
                    keyfile = \($0.serverKey)
                    cacertfile = \($0.caCertificate)
                    force_tls = true

                """
            } ?? ""
        let config = """
            [generic]
            \(listen)\(tls)    includedir = \(directory.path)/conf.d
            [spare]
                exportname = \(file.path)
                flush = true
                fua = true
            [ro]
                exportname = \(file.path)
                readonly = true

            """
        try config.write(to: directory.appendingPathComponent("nbd.conf"), atomically: true, encoding: .utf8)

        // nbd-server daemonizes: the process spawned here exits after the fork, and the daemon
        // makes its socket and PID file a moment later (seen missing under load). posix_spawn
        // rather than Foundation's Process: the child must start with no signal blocked (a daemon
        // that inherits a blocked SIGTERM never ends), and its exit is waited for with waitpid.
        let log = directory.appendingPathComponent("nbd-server.log").path
        let status = try Self.spawnAndWait(
            [
                "nbd-server", "-C", directory.appendingPathComponent("nbd.conf").path,
                "-p", directory.appendingPathComponent("nbd.pid").path,
            ] + (port.map { ["127.0.0.1@\($0)"] } ?? []),
            log: log)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw NBDLocalServerError("nbd-server exited with status \(status): \(text)")
        }

        // Ready when a client gets through the handshake and the PID file names the daemon; the
        // deadline is a hang detector only.
        let deadline = ContinuousClock.now + .seconds(20)
        var lastError: NBDError?
        while true {
            do {
                let probe = try NBDExport(uri: uri, tls: clientTLS)
                try probe.shutdown()
                break
            } catch {
                lastError = error
                guard ContinuousClock.now < deadline else {
                    throw NBDLocalServerError("nbd-server never accepted a client: \(lastError.map(String.init) ?? "")")
                }
                // Yield the CPU briefly between attempts: the other core may be the server's.
                _ = poll(nil, 0, 1)
            }
        }
        let pidFile = directory.appendingPathComponent("nbd.pid")
        while true {
            let text = (try? String(contentsOf: pidFile, encoding: .utf8)) ?? ""
            if let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 {
                self.pid = pid
                break
            }
            guard ContinuousClock.now < deadline else {
                throw NBDLocalServerError("no PID in \(pidFile.path): '\(text)'")
            }
            _ = poll(nil, 0, 1)
        }
    }

    /// Runs `arguments` (found on PATH) with stdout and stderr to `log`, default signal dispositions
    /// and an empty signal mask, and returns its wait status once it exits.
    package static func spawnAndWait(_ arguments: [String], log: String) throws -> Int32 {
        let child = try spawn(arguments, log: log)
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 {
            guard errno == EINTR else { throw NBDLocalServerError("waitpid: errno \(errno)") }
        }
        return status
    }

    /// Starts `arguments` (found on PATH, or a path) with stdin from `/dev/null`, stdout and stderr
    /// to `log`, default signal dispositions and an empty signal mask (what this process blocks or
    /// ignores is not the child's); returns its PID, for the caller to wait for.
    package static func spawn(_ arguments: [String], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw NBDLocalServerError("spawn \(arguments[0]): errno \(spawned)") }
        return child
    }

    /// A TCP port of 127.0.0.1 that no one listens on now: the kernel's choice for a socket bound
    /// to port 0, closed again (another process could take it before the server does; unlikely).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NBDLocalServerError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw NBDLocalServerError("bind 127.0.0.1:0: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Sends `signal` to the server's process group: the daemon and the child it forked for each
    /// client (nbd-server calls setsid, so its PID is the group's).
    package func signalGroup(_ signal: Int32) throws {
        guard kill(-pid, signal) == 0 else { throw NBDLocalServerError("kill -\(signal) -\(pid): errno \(errno)") }
    }

    /// The exported file's bytes, read from the file itself, not through NBD.
    package func fileBytes() throws -> [UInt8] {
        [UInt8](try Data(contentsOf: file))
    }

    /// Ends the server by its PID and removes the directory.
    deinit {
        if pid > 0 { kill(pid, SIGTERM) }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Why the local server could not be brought up.
package struct NBDLocalServerError: Error, CustomStringConvertible {
    /// What went wrong.
    package let description: String

    /// An error saying `description`.
    package init(_ description: String) { self.description = description }
}
