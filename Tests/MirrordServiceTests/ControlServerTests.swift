import Foundation
import Logging
import MirrorCore
import MirrorTestSupport
import MirrordConfig
import MirrordControl
import ServiceLifecycle
import Synchronization
import Testing

@testable import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The control socket against well-behaved and hostile clients, served while a duplex runs.
@Suite("Control socket: requests, replies, and hostile clients", .serialized)
struct ControlServerTests {
    /// A raw client: connect, send bytes, read one line.
    struct RawClient {
        let fd: Int32

        init?(path: String) {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { bytes in
                for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard rc == 0 else {
                Glibc.close(fd)
                return nil
            }
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            self.fd = fd
        }

        func send(_ text: String) { send(Array(text.utf8)) }

        func send(_ bytes: [UInt8]) {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if n <= 0 { return }
                offset += n
            }
        }

        /// Every reply line until the connection closes, as objects (nil for a line that is not one).
        func linesUntilClosed() -> [[String: Any]?] {
            var lines: [[String: Any]?] = []
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = recv(fd, &chunk, chunk.count, 0)
                guard count > 0 else { return lines }
                for byte in chunk[0..<count] {
                    if byte == UInt8(ascii: "\n") {
                        lines.append(try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
                        bytes = []
                    } else {
                        bytes.append(byte)
                    }
                }
            }
        }

        /// One reply line as an object, or nil when the connection closed first.
        func line() -> [String: Any]? {
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while recv(fd, &byte, 1, 0) == 1 {
                if byte == UInt8(ascii: "\n") {
                    return try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
                }
                bytes.append(byte)
            }
            return nil
        }

        func close() { Glibc.close(fd) }
    }

    /// A daemon-mode service on scripted hardware and its control socket in a fresh directory,
    /// neither running yet; the server's limits, group, log and view of its peers as given.
    func open(
        limits: ControlLimits = ControlLimits(), group: String = "", log: LogRecord = LogRecord(),
        peerCredentials: @escaping @Sendable (Int32) -> PeerCredentials? = { PeerCredentials(socket: $0) }
    ) throws -> (DuplexService, ControlServer, String, ScriptedHardware) {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 5_000, 900])
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = 1_000
        config.policy.blackoutTargetNanoseconds = 0
        let service = DuplexService(
            machine: hardware, configuration: RunningConfiguration(path: nil, configuration: config),
            mode: .daemon, logger: LogRecord().logger, notifier: NotificationLog().notifier())
        let path =
            NSTemporaryDirectory() + "mirrord-control-\(getpid())-\(UInt32.random(in: 0...UInt32.max))/control.sock"
        let server = try ControlServer(
            path: path, group: group, logger: log.logger, limits: limits, peerCredentials: peerCredentials
        ) {
            service.controlReply(to: $0)
        }
        return (service, server, path, hardware)
    }

    /// ``open(limits:group:log:peerCredentials:)``, with a task that runs both (cancelling it
    /// stops both).
    func serve(
        limits: ControlLimits = ControlLimits(), group: String = "", log: LogRecord = LogRecord(),
        peerCredentials: @escaping @Sendable (Int32) -> PeerCredentials? = { PeerCredentials(socket: $0) }
    ) throws -> (DuplexService, ControlServer, String, Task<Void, any Error>, ScriptedHardware) {
        let (service, server, path, hardware) = try open(
            limits: limits, group: group, log: log, peerCredentials: peerCredentials)
        let task = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await server.run() }
                group.addTask { try await service.run() }
                try await group.next()
                group.cancelAll()
            }
        }
        return (service, server, path, task, hardware)
    }

    @Test("in a service group it serves with the others; a graceful shutdown closes it and removes the socket")
    func inServiceGroup() async throws {
        let (service, server, path, _) = try open()
        // The daemon's order: the server first, so that the group shuts it down last.
        let group = ServiceGroup(services: [server, service], logger: LogRecord().logger)
        let running = Task { try await group.run() }
        await until("the duplex ended") { service.summary != nil }
        let client = try #require(RawClient(path: path))
        defer { client.close() }
        client.send(#"{"verb":"status"}"# + "\n")
        #expect(client.line()?["state"] as? String == "duplexed")
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(client.line() == nil, "the connection is closed")
        #expect(access(path, F_OK) != 0, "the socket is removed")
    }

    @Test("status answers with the state, the progress and the version; actions are taken in")
    func statusAndActions() async throws {
        let (service, server, path, task, _) = try serve()
        defer {
            server.stop()
            task.cancel()
        }
        await until("the duplex ended") { service.summary != nil }
        let client = try #require(RawClient(path: path))
        defer { client.close() }
        client.send(#"{"verb":"status"}"# + "\n")
        let status = try #require(client.line())
        #expect(status["ok"] as? Bool == true && status["state"] as? String == "duplexed")
        #expect(status["version"] as? String == MirrordVersion.string)
        let progress = try #require(status["progress"] as? [String: Any])
        #expect((progress["passes"] as? [Any])?.count == 2 && progress["engine_state"] as? String == "duplexed")
        client.send(#"{"verb":"scrub"}"# + "\n")
        #expect(client.line()?["action"] as? String == "scrub")
        // Actions that cannot be carried out say why.
        for (request, why) in [
            (#"{"verb":"reduplex"}"#, "the pair is duplexed, not simplex"),
            (#"{"verb":"replace-spare"}"#, "this backend has no fault model"),
            (#"{"verb":"inject-fault","kind":"lost"}"#, "backend scripted has no fault model"),
        ] {
            client.send(request + "\n")
            let reply = try #require(client.line())
            #expect(
                reply["ok"] as? Bool == false && (reply["error"] as? String)?.hasPrefix(why) == true,
                "\(request): \(reply)")
        }
    }

    @Test("garbage, unknown verbs and bad fields get an error reply, and the connection serves on")
    func garbage() async throws {
        let (_, server, path, task, _) = try serve()
        defer {
            server.stop()
            task.cancel()
        }
        let client = try #require(RawClient(path: path))
        defer { client.close() }
        for (line, error) in [
            ("\u{1}\u{2}garbage", "not a JSON object on one line"),
            (#"{"verb":"format-disk"}"#, "unknown verb \"format-disk\""),
            (#"{"verb":"inject-fault"}"#, "inject-fault needs \"kind\""),
            (#"{"verb":"inject-fault","kind":"lost","frame":-1}"#, "\"frame\" must be"),
            // Once taken as frame 1, and the fault raised.
            (#"{"verb":"inject-fault","kind":"uncorrectable","frame":true,"module":"spare"}"#, "\"frame\" must be"),
            (#"{"verb":"status","frame":1}"#, "unknown field \"frame\""),
        ] {
            client.send(line + "\n")
            let reply = try #require(client.line())
            #expect(reply["ok"] as? Bool == false)
            #expect((reply["error"] as? String)?.hasPrefix(error) == true, "\(reply)")
        }
        client.send(#"{"verb":"status"}"# + "\n")
        #expect(client.line()?["ok"] as? Bool == true)
    }

    @Test(
        "a 10 MB line, 100 clients at once, and a client that never reads: each is refused or dropped, the duplex finishes and the socket serves on"
    )
    func hostileClients() async throws {
        let (service, server, path, task, _) = try serve()
        defer {
            server.stop()
            task.cancel()
        }
        // A 10 MB line: an error, then the connection is closed.
        let flooder = try #require(RawClient(path: path))
        let sent = DispatchSemaphore(value: 0)
        let sender = Thread {
            flooder.send([UInt8](repeating: UInt8(ascii: "x"), count: 10 << 20))
            sent.signal()
        }
        sender.start()
        let refusal = try #require(flooder.line())
        #expect((refusal["error"] as? String)?.hasPrefix("request longer than") == true)
        // The sender stops once the server has closed its end; only then may its descriptor go
        // (a number reused by the next client would get the rest of the 10 MB).
        sent.wait()
        flooder.close()
        await until("every client is gone") { server.clientCount == 0 }
        // 100 at once: those past the limit are told the socket is busy, and closed.
        let crowd = (0..<100).compactMap { _ in RawClient(path: path) }
        #expect(crowd.count == 100)
        var busy = 0
        var served = 0
        var closed = 0
        for client in crowd {
            client.send(#"{"verb":"status"}"# + "\n")
        }
        for client in crowd {
            let reply = client.line()
            if reply?["ok"] as? Bool == true {
                served += 1
            } else if (reply?["error"] as? String)?.hasPrefix("busy") == true {
                busy += 1
            } else if reply == nil {
                closed += 1
            }
        }
        #expect(served == ControlServer.maximumClients, "served \(served), busy \(busy), closed \(closed)")
        #expect(busy == 100 - ControlServer.maximumClients, "served \(served), busy \(busy), closed \(closed)")
        for client in crowd { client.close() }
        await until("every client is gone") { server.clientCount == 0 }
        // A client that asks and never reads: once 1 MiB of replies waits it is not read from, and it
        // is dropped when idle.
        let deaf = try #require(RawClient(path: path))
        var shrink: Int32 = 4_096
        setsockopt(deaf.fd, SOL_SOCKET, SO_RCVBUF, &shrink, socklen_t(MemoryLayout<Int32>.size))
        let asked = DispatchSemaphore(value: 0)
        let asking = Thread {
            for _ in 0..<20_000 { deaf.send(#"{"verb":"status"}"# + "\n") }
            asked.signal()
        }
        asking.start()
        await until("the duplex ended") { service.summary != nil }
        #expect(service.summary?.isDuplexed == true, "the duplex finished through it all")
        let fresh = try #require(RawClient(path: path))
        fresh.send(#"{"verb":"status"}"# + "\n")
        #expect(fresh.line()?["ok"] as? Bool == true, "the socket still serves")
        fresh.close()
        // A client that never reads its replies is dropped (after the 10 s idle limit).
        await until("the deaf client is dropped") { server.clientCount == 0 }
        shutdown(deaf.fd, Int32(SHUT_RDWR))
        asked.wait()
        deaf.close()
    }

    @Test("only root, the daemon's user and the control group's members may connect")
    func credentials() {
        #expect(PeerCredentials(pid: 1, uid: 0, gid: 0).isAllowed(group: ""))
        #expect(PeerCredentials(pid: 1, uid: geteuid(), gid: getegid()).isAllowed(group: ""))
        #expect(!PeerCredentials(pid: 1, uid: 65_534, gid: 65_534).isAllowed(group: ""))
        #expect(!PeerCredentials(pid: 1, uid: 65_534, gid: 65_534).isAllowed(group: "no-such-group-here"))
        if let nogroup = getgrnam("nogroup") {
            #expect(
                !PeerCredentials(pid: 1, uid: 65_534, gid: nogroup.pointee.gr_gid).isAllowed(group: "nogroup"),
                "the overflow ids of a user namespace are never let in")
        }
        if let root = getgrnam("root") {
            #expect(
                PeerCredentials(pid: 1, uid: 4_321, gid: root.pointee.gr_gid).isAllowed(group: "root"),
                "a member by primary group")
        }
    }

    /// A peer's credentials that a test changes as it goes (the tests run as root, and the kernel's
    /// `SO_PEERCRED` would say root for every client).
    final class Impersonation: Sendable {
        private let credentials: Mutex<PeerCredentials>

        /// Every peer is `credentials` until ``become(_:)``.
        init(_ credentials: PeerCredentials) { self.credentials = Mutex(credentials) }

        /// From now, every new peer is `credentials`.
        func become(_ credentials: PeerCredentials) { self.credentials.withLock { $0 = credentials } }

        /// The server's view of its peers: whoever the test says.
        var peerCredentials: @Sendable (Int32) -> PeerCredentials? { { _ in self.credentials.withLock { $0 } } }
    }

    @Test("the socket is 0600 in a directory of 0750; 0660 and of control.group when one is set")
    func socketPermissions() throws {
        let (_, server, path, _) = try open()
        defer { server.stop() }
        var info = stat()
        #expect(
            stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600, "socket \(String(info.st_mode & 0o777, radix: 8))")
        let directory = (path as NSString).deletingLastPathComponent
        #expect(
            stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o750,
            "directory \(String(info.st_mode & 0o777, radix: 8))")
        let group = try #require(getgrgid(getegid())).pointee
        let name = String(cString: group.gr_name)
        let (_, grouped, groupedPath, _) = try open(group: name)
        defer { grouped.stop() }
        #expect(stat(groupedPath, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_gid == group.gr_gid)
        let groupedDirectory = (groupedPath as NSString).deletingLastPathComponent
        #expect(stat(groupedDirectory, &info) == 0 && info.st_mode & 0o777 == 0o750 && info.st_gid == group.gr_gid)
    }

    @Test("300 refused connections of one uid in a minute are journalled once")
    func refusalsRateLimited() async throws {
        let log = LogRecord()
        let stranger = Impersonation(PeerCredentials(pid: 4_242, uid: 65_534, gid: 65_534))
        let (_, server, path, task, _) = try serve(log: log, peerCredentials: stranger.peerCredentials)
        defer {
            server.stop()
            task.cancel()
        }
        for _ in 0..<300 {
            let client = try #require(RawClient(path: path))
            // The refusal is read: the server has handled this connection before the next.
            #expect((client.line()?["error"] as? String)?.hasPrefix("permission denied") == true)
            client.close()
        }
        let refusals = log.all.filter { $0.message.contains("control socket: refused uid 65534") }
        #expect(refusals.count == 1, "\(refusals.count) refusals journalled")
        #expect(refusals.first?.level == .warning)
    }

    @Test("the refusals not journalled are: their number, when the interval ends; none is lost")
    func suppressedRefusalsJournalled() async throws {
        let log = LogRecord()
        var limits = ControlLimits()
        limits.refusalLogIntervalNanoseconds = 1_000_000_000
        let stranger = Impersonation(PeerCredentials(pid: 4_242, uid: 65_534, gid: 65_534))
        let (_, server, path, task, _) = try serve(
            limits: limits, log: log, peerCredentials: stranger.peerCredentials)
        defer {
            server.stop()
            task.cancel()
        }
        for _ in 0..<50 {
            let client = try #require(RawClient(path: path))
            #expect((client.line()?["error"] as? String)?.hasPrefix("permission denied") == true)
            client.close()
        }
        // However many intervals the 50 spanned on a busy machine, each refusal is journalled or
        // counted in a line once its interval ends.
        func accounted() -> (journalled: Int, counted: Int) {
            var journalled = 0
            var counted = 0
            for entry in log.all where entry.message.hasPrefix("control socket: refused uid 65534") {
                if entry.message.hasPrefix("control socket: refused uid 65534, pid 4242") {
                    journalled += 1
                } else if let count = Int(entry.message.split(separator: " ")[5]) {
                    counted += count
                }
            }
            return (journalled, counted)
        }
        await until("every refusal is journalled or counted", seconds: 60) {
            let (journalled, counted) = accounted()
            return journalled + counted == 50
        }
        let (journalled, counted) = accounted()
        #expect(journalled < 50 && counted > 0, "\(journalled) journalled, \(counted) counted")
    }

    @Test("refusals are counted per uid and interval: the first journalled, the number of the rest when it ends")
    func refusalLog() {
        var journal = RefusalLog(intervalNanoseconds: 1_000)
        let first = journal.refused(uid: 65_534, at: 10)
        let other = journal.refused(uid: 1_000, at: 20)
        #expect(first && other, "the first of each uid is journalled")
        var journalled = 0
        for tick in 0..<2_999 where journal.refused(uid: 65_534, at: UInt64(tick) / 3 + 10) { journalled += 1 }
        #expect(journalled == 0)
        let early = journal.ended(at: 1_009)
        #expect(early.isEmpty)
        let ended = journal.ended(at: 1_010)
        #expect(ended == [RefusalLog.Suppressed(uid: 65_534, count: 2_999)])
        let quiet = journal.ended(at: 1_020)
        #expect(quiet.isEmpty, "uid 1000's interval ends with nothing counted")
        let again = journal.refused(uid: 65_534, at: 1_011)
        #expect(again, "a new interval journals again")
    }

    @Test("a client that sends 500 requests in one write and shuts down its side gets all 500 replies")
    func halfClose() async throws {
        var limits = ControlLimits()
        limits.maximumPendingOutput = 8 << 10  // the replies wait on the client's reading, too
        let (_, server, path, task, _) = try serve(limits: limits)
        defer {
            server.stop()
            task.cancel()
        }
        let client = try #require(RawClient(path: path))
        defer { client.close() }
        client.send(String(repeating: #"{"verb":"status"}"# + "\n", count: 499) + #"{"verb":"status"}"#)
        shutdown(client.fd, Int32(SHUT_WR))
        let replies = client.linesUntilClosed()
        #expect(replies.count == 500, "\(replies.count) replies")
        #expect(replies.allSatisfy { $0?["ok"] as? Bool == true })
        await until("the client is gone") { server.clientCount == 0 }
    }

    @Test("a request line not complete within the deadline is refused and the client dropped; whole lines are served")
    func slowClient() async throws {
        var limits = ControlLimits()
        limits.requestNanoseconds = 200_000_000
        let (_, server, path, task, _) = try serve(limits: limits)
        defer {
            server.stop()
            task.cancel()
        }
        let prompt = try #require(RawClient(path: path))
        defer { prompt.close() }
        prompt.send(#"{"verb":"#)
        prompt.send(#""status"}"# + "\n")
        #expect(prompt.line()?["ok"] as? Bool == true, "a line sent in two pieces at once is served")
        let slow = try #require(RawClient(path: path))
        defer { slow.close() }
        slow.send(#"{"verb":"#)
        let refusal = try #require(slow.line())
        #expect((refusal["error"] as? String)?.hasPrefix("request not complete within 0.2 s") == true, "\(refusal)")
        #expect(slow.line() == nil, "the slow client's connection is closed")
        prompt.send(#"{"verb":"status"}"# + "\n")
        #expect(prompt.line()?["ok"] as? Bool == true, "the prompt client, idle between its lines, is served on")
    }

    @Test("the last place is kept for root: others get busy past 31 clients, root is served")
    func placeForRoot() async throws {
        let root = try #require(getgrnam("root")).pointee.gr_gid
        let member = Impersonation(PeerCredentials(pid: 4_242, uid: 4_321, gid: root))
        let (_, server, path, task, _) = try serve(group: "root", peerCredentials: member.peerCredentials)
        defer {
            server.stop()
            task.cancel()
        }
        var members: [RawClient] = []
        defer { for client in members { client.close() } }
        for _ in 0..<(ControlServer.maximumClients - 1) {
            let client = try #require(RawClient(path: path))
            client.send(#"{"verb":"status"}"# + "\n")
            #expect(client.line()?["ok"] as? Bool == true)
            members.append(client)
        }
        let late = try #require(RawClient(path: path))
        defer { late.close() }
        late.send(#"{"verb":"status"}"# + "\n")
        #expect((late.line()?["error"] as? String)?.hasPrefix("busy") == true, "a member past 31 is busy")
        member.become(PeerCredentials(pid: 1, uid: 0, gid: 0))
        let admin = try #require(RawClient(path: path))
        defer { admin.close() }
        admin.send(#"{"verb":"status"}"# + "\n")
        #expect(admin.line()?["ok"] as? Bool == true, "root takes the place kept for it")
        let second = try #require(RawClient(path: path))
        defer { second.close() }
        second.send(#"{"verb":"status"}"# + "\n")
        #expect((second.line()?["error"] as? String)?.hasPrefix("busy") == true, "past 32, root too is busy")
    }

    @Test("a watching client gets one last status when the daemon stops; a status client does not")
    func watchGetsFinalStatus() async throws {
        let (service, server, path, task, _) = try serve()
        defer { task.cancel() }
        await until("the duplex ended") { service.summary != nil }
        let watcher = try #require(RawClient(path: path))
        defer { watcher.close() }
        watcher.send(#"{"verb":"watch"}"# + "\n")
        #expect(watcher.line()?["state"] as? String == "duplexed")
        let asker = try #require(RawClient(path: path))
        defer { asker.close() }
        asker.send(#"{"verb":"status"}"# + "\n")
        #expect(asker.line()?["state"] as? String == "duplexed")
        server.stop()
        let last = watcher.linesUntilClosed()
        #expect(last.count == 1 && last.first??["ok"] as? Bool == true && last.first??["status"] is String, "\(last)")
        #expect(asker.linesUntilClosed().isEmpty)
    }
}
