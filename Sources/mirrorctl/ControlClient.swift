import Foundation
import MirrordControl

#if canImport(Glibc)
import Glibc
#endif

/// A connection to mirrord's control socket: one JSON request line out, one JSON reply line in.
struct ControlClient {
    /// Why the daemon could not be asked, with the exit status that says so.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// 69 (EX_UNAVAILABLE): no daemon; 77 (EX_NOPERM): not allowed; 74 (EX_IOERR): the
        /// connection broke.
        var status: Int32
    }

    private let fd: Int32
    private var pending: [UInt8] = []

    /// Connects to the socket at `path`; a reply that takes longer than `replySeconds` fails.
    init(path: String, replySeconds: Int = 10) throws(Failure) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw Failure(description: "socket path too long: \(path)", status: 64)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))", status: 71) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            let reason = String(cString: strerror(code))
            switch code {
            case EACCES, EPERM:
                throw Failure(
                    description:
                        "cannot use mirrord's control socket \(path): \(reason) (root, or a member of control.group, only)",
                    status: 77)
            default:
                throw Failure(
                    description: "cannot reach mirrord at \(path): \(reason) (is it running? systemctl status mirrord)",
                    status: 69)
            }
        }
        self.fd = fd
        // A reply that never comes (a wedged daemon) must not hang the operator's shell.
        var timeout = timeval(tv_sec: replySeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Closes the connection.
    func close() { _ = Glibc.close(fd) }

    /// Sends `request` and returns the daemon's reply; a refusal or an error reply throws.
    mutating func ask(_ request: ControlRequest) throws(Failure) -> ControlReply {
        guard var line = try? ControlCoding.line(for: request) else {
            throw Failure(description: "cannot encode the request", status: 70)
        }
        line.append(UInt8(ascii: "\n"))
        // A refused (or busy) client is told why and closed before its request is read: if the
        // send fails, the reason may still be waiting to be read.
        let sent = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let sendFailed = sent != line.count
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let text = Data(pending[0..<newline])
                pending.removeSubrange(0...newline)
                let reply: ControlReply
                do throws(ControlReplyError) {
                    reply = try ControlReply(line: text)
                } catch {
                    throw Failure(description: error.description, status: 74)
                }
                if case .refused(let refusal) = reply {
                    let status: Int32 =
                        switch refusal.reason {
                        case .notKnownNewest?: 2
                        case .notTold?: 75
                        case nil: refusal.error.hasPrefix("permission denied") ? 77 : 1
                        }
                    throw Failure(description: "mirrord: \(refusal.error)", status: status)
                }
                return reply
            }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else {
                if sendFailed { throw Failure(description: "the daemon closed the connection", status: 74) }
                throw Failure(
                    description: count == 0
                        ? "the daemon closed the connection" : "no reply: \(String(cString: strerror(errno)))",
                    status: 74)
            }
            pending.append(contentsOf: chunk[0..<count])
        }
    }
}

extension ControlClient {
    /// Asks `status`, or `watch` when `watching` (the same reply; and when the daemon stops, one
    /// last status comes unasked: the next call returns it).
    mutating func status(watching: Bool = false) throws(Failure) -> StatusReply {
        guard case .status(let status) = try ask(watching ? .watch : .status) else {
            throw Failure(description: "the daemon did not answer status with a status", status: 74)
        }
        return status
    }

    /// Asks for an action and returns what the daemon took in.
    mutating func act(_ request: ControlRequest) throws(Failure) -> ControlAcknowledgement {
        guard case .acknowledged(let acknowledgement) = try ask(request) else {
            throw Failure(description: "the daemon did not acknowledge \(request.verb.rawValue)", status: 74)
        }
        return acknowledgement
    }
}
