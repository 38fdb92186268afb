/// An NBD URI as libnbd's `nbd_connect_uri` reads it (the NBD URI specification), taken apart
/// enough to check it before anything connects: `nbd://HOST[:PORT]/EXPORT`, `nbds://…` (TLS),
/// `nbd+unix:///EXPORT?socket=PATH`, `nbds+unix://…`, `nbd+vsock://CID[:PORT]/EXPORT`,
/// `nbds+vsock://…`.
///
/// The configuration keeps the text itself (libnbd parses it again to connect); this value only
/// says whether the text is one and what it points at. Messages show a URI through
/// ``redacted(_:)``, which never echoes a password.
package struct NBDURI: Sendable, Hashable {
    /// The URI schemes libnbd reads.
    package enum Scheme: String, Sendable, Hashable, CaseIterable {
        /// TCP, cleartext.
        case nbd
        /// TCP with TLS.
        case nbds
        /// A Unix domain socket on this host, cleartext.
        case nbdUnix = "nbd+unix"
        /// A Unix domain socket on this host, with TLS.
        case nbdsUnix = "nbds+unix"
        /// `AF_VSOCK` (between a virtual machine and its host), cleartext.
        case nbdVsock = "nbd+vsock"
        /// `AF_VSOCK`, with TLS.
        case nbdsVsock = "nbds+vsock"

        /// Whether the connection is encrypted (and fails when the server offers no TLS).
        package var usesTLS: Bool { self == .nbds || self == .nbdsUnix || self == .nbdsVsock }

        /// Whether the server is reached through a Unix domain socket (`socket=`).
        package var usesUnixSocket: Bool { self == .nbdUnix || self == .nbdsUnix }

        /// Whether the server is reached through `AF_VSOCK` (the host is a numeric CID).
        package var usesVsock: Bool { self == .nbdVsock || self == .nbdsVsock }
    }

    /// The schemes as an error message lists them.
    package static let schemeList = Scheme.allCases.map { "\($0.rawValue)://" }.joined(separator: ", ")

    /// The scheme.
    package var scheme: Scheme
    /// The server: a host name or address (IPv6 without its brackets), a vsock CID, or `""` for a
    /// Unix socket.
    package var host: String
    /// The port, when the URI gives one (libnbd's default is 10809).
    package var port: Int?
    /// The export's name: the path without its leading `/` (`""`: the server's default export).
    package var export: String
    /// The Unix socket's path (`socket=`), for the `+unix` schemes.
    package var socket: String?
    /// The user part before `@` without a password (`alice` of `nbds://alice@host/x`), nil when
    /// there is none: libnbd's TLS user name, whose key it looks up in a PSK file.
    package var user: String?

    /// `text` taken apart, or nil when it is not an NBD URI libnbd would connect to; ``problem(in:)``
    /// says why.
    package init?(_ text: String) {
        var problem: String?
        guard let uri = Self.parse(text, problem: &problem) else { return nil }
        self = uri
    }

    private init(scheme: Scheme, host: String, port: Int?, export: String, socket: String?, user: String?) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.export = export
        self.socket = socket
        self.user = user
    }

    /// Why `text` is not an NBD URI mirrord can use, as the end of a sentence that begins with the
    /// key, or nil when it is one. The URI is quoted redacted.
    package static func problem(in text: String) -> String? {
        var problem: String?
        _ = parse(text, problem: &problem)
        return problem
    }

    /// Whether the server is this host: a Unix socket, `localhost`, `127.0.0.0/8`, `::1`, or the
    /// vsock CID 1 (`VMADDR_CID_LOCAL`).
    package var isLoopback: Bool {
        if scheme.usesUnixSocket { return true }
        if scheme.usesVsock { return host == "1" }
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" || name == "0:0:0:0:0:0:0:1" {
            return true
        }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// `text` as a message may show it: a password in the user part (`user:PASSWORD@`, with or
    /// without a scheme before it) or in a query parameter whose name holds `password` or `secret`
    /// is replaced by `***`. It errs on the side of hiding: everything from the first `:` after the
    /// scheme to the last `@` before the query goes, whatever characters the password holds.
    package static func redacted(_ text: String) -> String {
        let start = text.firstRange(of: "://")?.upperBound ?? text.startIndex
        let queryStart = text[start...].firstIndex(of: "?") ?? text.endIndex
        var shown = String(text[..<start])
        let beforeQuery = text[start..<queryStart]
        if let at = beforeQuery.lastIndex(of: "@"), let colon = beforeQuery[..<at].firstIndex(of: ":") {
            shown += beforeQuery[...colon] + "***" + beforeQuery[at...]
        } else {
            shown += beforeQuery
        }
        guard queryStart < text.endIndex else { return shown }
        let parameters = text[text.index(after: queryStart)...].split(separator: "&", omittingEmptySubsequences: false)
            .map { parameter in
                guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
                let name = parameter[..<equals].lowercased()
                return name.contains("password") || name.contains("secret")
                    ? String(parameter[...equals]) + "***" : String(parameter)
            }
        return shown + "?" + parameters.joined(separator: "&")
    }

    /// The parse behind ``init(_:)`` and ``problem(in:)``.
    private static func parse(_ text: String, problem: inout String?) -> NBDURI? {
        let shown = QuotedValue(redacted(text))
        func fail(_ message: String) -> NBDURI? {
            problem = message
            return nil
        }
        guard let schemeEnd = text.firstRange(of: "://"),
            let scheme = Scheme(rawValue: text[..<schemeEnd.lowerBound].lowercased())
        else {
            return fail("\(shown) is not an NBD URI (\(schemeList))")
        }
        if text.unicodeScalars.contains(where: { $0 == " " || $0 == "\t" || $0.properties.generalCategory == .control })
        {
            return fail("\(shown) holds a space or a control character; write the URI without them (%20 for a space)")
        }
        var rest = text[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") {
            guard rest.index(after: hash) == rest.endIndex else {
                return fail("\(shown) has a fragment (#…), which an NBD URI does not take")
            }
            rest = rest[..<hash]
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var hostPort = rest[..<authorityEnd]
        var user: String?
        if let at = hostPort.lastIndex(of: "@") {
            let userInfo = hostPort[..<at]
            user = String(userInfo.prefix { $0 != ":" })
            hostPort = hostPort[hostPort.index(after: at)...]
        }
        let pathEnd = rest.firstIndex(of: "?") ?? rest.endIndex
        let path = rest[authorityEnd..<pathEnd]
        let query = pathEnd < rest.endIndex ? rest[rest.index(after: pathEnd)...] : ""

        // The server: [IPv6]:port, host:port, or host.
        var host = Substring(hostPort)
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                return fail("\(shown) opens an IPv6 address with [ but never closes it")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return fail("\(shown) has text after the IPv6 address's ]") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
            if host.contains(":") {
                return fail("\(shown): write an IPv6 address in brackets, like nbds://[fd00::2]:10809/EXPORT")
            }
        }
        var port: Int?
        if let portText {
            guard let number = Int(portText), (1...65_535).contains(number) else {
                return fail("\(shown): \(QuotedValue(portText)) is not a port (1 to 65535)")
            }
            port = number
        }

        var socket: String?
        for parameter in query.split(separator: "&") {
            let name = parameter.prefix { $0 != "=" }
            let value = parameter.dropFirst(name.count + 1)
            switch name {
            case "socket":
                guard scheme.usesUnixSocket else {
                    return fail("\(shown): socket= belongs to nbd+unix:// and nbds+unix:// only")
                }
                socket = String(value)
            case "tls-psk-file", "tls-certificates":
                // NBDExport connects with nbd_set_uri_allow_local_file off: refused here, not there.
                return fail(
                    "\(shown): \(name)= names a local file, which mirrord never lets a URI read; drop it and set remote.\(name == "tls-psk-file" ? "tls_psk_file" : "tls_certificates") instead"
                )
            default:
                continue
            }
        }

        if scheme.usesUnixSocket {
            guard hostPort.isEmpty else {
                return fail(
                    "\(shown): an \(scheme.rawValue):// URI takes no host; write \(scheme.rawValue):///EXPORT?socket=PATH"
                )
            }
            guard let socket, !socket.isEmpty else {
                return fail("\(shown) names no socket; write \(scheme.rawValue):///EXPORT?socket=PATH")
            }
        } else if scheme.usesVsock {
            guard !host.isEmpty, UInt32(host) != nil else {
                return fail(
                    "\(shown): the host of \(scheme.rawValue):// is a numeric vsock CID (2: the hypervisor); write \(scheme.rawValue)://CID[:PORT]/EXPORT"
                )
            }
        } else if host.isEmpty {
            return fail("\(shown) names no host; write \(scheme.rawValue)://HOST[:PORT]/EXPORT")
        }
        let export = path.hasPrefix("/") ? path.dropFirst() : path
        return NBDURI(
            scheme: scheme, host: String(host), port: port, export: String(export), socket: socket,
            user: user.flatMap { $0.isEmpty ? nil : $0 })
    }
}
