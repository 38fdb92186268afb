import Foundation
import Testing

@testable import MirrorNBD

/// nbds:// against Debian's nbd-server serving TLS only (`force_tls`) with X.509 certificates
/// made by the test (`NBDTestCertificates`, openssl): the credentials reach libnbd, the session is
/// encrypted, and every way of coming without the right ones is refused in one line.
@Suite("TLS: nbds:// with certificates", .serialized)
struct NBDTLSTests {
    /// A fresh directory for a set of certificates, removed by the caller.
    private static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mirrord-tls-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Writes 1 MiB of a pattern at 64 KiB through `export` (pipelined, then flushed), reads it
    /// back over the same connection, and checks the server's file holds it.
    private static func roundTrip(_ export: NBDExport, server: NBDLocalServer) throws {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 7) }
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 8)
        let summary = try bytes.withUnsafeBytes { memory in
            try writer.write(from: memory, frames: 0..<256, frameSize: 4096)
        }
        #expect(summary.bytes == 1 << 20)
        try export.flush()
        #expect(try export.read(offset: 0, count: 1 << 20) == bytes, "read back over TLS")
        #expect(Array(try server.fileBytes()[0..<(1 << 20)]) == bytes, "the server's file holds the write")
    }

    @Test("nbds+unix:// with the right certificates: a write and a read round trip, encrypted")
    func unixRoundTrip() throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let certificates = try NBDTestCertificates(in: scratch)
        let server = try NBDLocalServer(size: 4 << 20, certificates: certificates)
        #expect(server.uri.hasPrefix("nbds+unix://"))
        let export = try NBDExport(uri: server.uri, tls: server.clientTLS)
        #expect(export.isTLS && export.tls == server.clientTLS)
        try Self.roundTrip(export, server: server)
        try export.shutdown()
    }

    @Test("nbds://127.0.0.1 with the right certificates: a round trip, the server's name checked")
    func tcpRoundTrip() throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let certificates = try NBDTestCertificates(in: scratch)
        let server = try NBDLocalServer(size: 4 << 20, certificates: certificates, tcp: true)
        #expect(server.uri.hasPrefix("nbds://127.0.0.1:"))
        let export = try NBDExport(uri: server.uri, tls: server.clientTLS, stallTimeout: .seconds(20))
        #expect(export.isTLS)
        try Self.roundTrip(export, server: server)
        try export.shutdown()
        // Several connections, each with the credentials.
        let writer = try NBDMultiConnectionWriter(uri: server.uri, tls: server.clientTLS, connections: 2)
        #expect(writer.writers.allSatisfy { $0.export.isTLS })
    }

    @Test("a server of another CA is refused by the client; a client of another CA by the server")
    func wrongCA() throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let certificates = try NBDTestCertificates(in: scratch.appendingPathComponent("right"))
        let other = try NBDTestCertificates(in: scratch.appendingPathComponent("other"))
        let wrong = NBDTLS.certificates(directory: other.clientDirectory)

        // Over TCP libnbd checks the server's certificate against the CA it was given.
        let tcp = try NBDLocalServer(size: 1 << 20, certificates: certificates, tcp: true)
        let refused = #expect(throws: NBDError.self) {
            try NBDExport(uri: tcp.uri, tls: wrong, stallTimeout: .seconds(20))
        }
        #expect(
            refused?.description
                == "connect \(tcp.uri): TLS with the certificates in \(other.clientDirectory): gnutls_handshake: Error in the certificate verification. (15/1)"
        )

        // Over a Unix socket the server checks the client's certificate (cacertfile) and hangs up.
        let unix = try NBDLocalServer(size: 1 << 20, certificates: certificates)
        let hungUp = #expect(throws: NBDError.self) {
            try NBDExport(uri: unix.uri, tls: wrong, stallTimeout: .seconds(20))
        }
        #expect(
            hungUp?.description.hasPrefix(
                "connect \(unix.uri): TLS with the certificates in \(other.clientDirectory): ")
                == true, "\(hungUp.map(String.init) ?? "")")
    }

    @Test("without credentials, or in cleartext, a TLS-only server is refused")
    func withoutCredentials() throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let certificates = try NBDTestCertificates(in: scratch)
        let server = try NBDLocalServer(size: 1 << 20, certificates: certificates, tcp: true)

        // nbds:// with libnbd's defaults (no certificates of this CA anywhere): not trusted.
        let untrusted = #expect(throws: NBDError.self) { try NBDExport(uri: server.uri, stallTimeout: .seconds(20)) }
        #expect(untrusted?.description.hasPrefix("connect \(server.uri): ") == true)

        // The negative control: the same server in cleartext. It serves TLS only.
        let plain = #expect(throws: NBDError.self) { try NBDExport(uri: server.plainURI, stallTimeout: .seconds(20)) }
        #expect(
            plain?.description
                == "connect \(server.plainURI): handshake: server requires TLS encryption first: Operation not supported"
        )

        // Credentials with a cleartext URI: refused before anything is sent, not sent in clear.
        let mixed = #expect(throws: NBDError.self) {
            try NBDExport(uri: server.plainURI, tls: server.clientTLS, stallTimeout: .seconds(20))
        }
        #expect(mixed?.errno == EPERM)
        #expect(mixed?.message.contains("not permitted") == true, "\(mixed.map(String.init) ?? "")")
    }

    @Test("a pre-shared key (nbdkit --tls-psk): a round trip with the right key, a wrong one refused")
    func preSharedKey() throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let kit = try PSKServer(in: scratch)
        defer { kit.stop() }
        let tls = NBDTLS.pskFile(path: kit.keys, username: "mirrord")
        let export = try NBDExport(uri: kit.uri, tls: tls, stallTimeout: .seconds(20))
        #expect(export.isTLS && export.size == 4 << 20)
        var bytes = [UInt8](repeating: 0, count: 256 << 10)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 40_503 >> 5) }
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 8)
        _ = try bytes.withUnsafeBytes { try writer.write(from: $0, frames: 0..<64, frameSize: 4096) }
        try export.flush()
        #expect(try export.read(offset: 0, count: bytes.count) == bytes)
        try export.shutdown()
        // The user from the URI instead.
        let named = kit.uri.replacingOccurrences(of: "nbds+unix://", with: "nbds+unix://mirrord@")
        #expect(try NBDExport(uri: named, tls: .pskFile(path: kit.keys), stallTimeout: .seconds(20)).isTLS)

        let wrong = #expect(throws: NBDError.self) {
            try NBDExport(
                uri: kit.uri, tls: .pskFile(path: kit.wrongKeys, username: "mirrord"), stallTimeout: .seconds(20))
        }
        #expect(
            wrong?.description.hasPrefix("connect \(kit.uri): TLS with the key of mirrord in \(kit.wrongKeys): ")
                == true,
            "\(wrong.map(String.init) ?? "")")
        let plain = #expect(throws: NBDError.self) {
            try NBDExport(uri: kit.uri.replacingOccurrences(of: "nbds+", with: "nbd+"), stallTimeout: .seconds(20))
        }
        #expect(plain?.message.contains("server requires TLS encryption first") == true)
    }

    @Test("the credentials as messages name them")
    func descriptions() {
        #expect(NBDTLS.certificates(directory: "/etc/m").description == "TLS with the certificates in /etc/m")
        #expect(NBDTLS.pskFile(path: "/etc/k").description == "TLS with the pre-shared key in /etc/k")
        #expect(NBDTLS.pskFile(path: "/etc/k", username: "m").description == "TLS with the key of m in /etc/k")
    }
}

/// nbdkit's memory plugin on a Unix socket, TLS required with a PSK file of one user, `mirrord`
/// (Debian's nbd-server has no PSK). Ended by its PID.
private struct PSKServer {
    let uri: String
    let keys: String
    let wrongKeys: String
    let pid: pid_t

    init(in directory: URL) throws {
        guard
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/nbdkit")
                || FileManager.default.isExecutableFile(atPath: "/usr/bin/nbdkit")
        else { throw NBDLocalServerError("nbdkit is not installed: run scripts/setup.sh test") }
        let path = directory.path
        keys = path + "/keys.psk"
        wrongKeys = path + "/wrong.psk"
        let hex = { (seed: UInt64) in
            (0..<32).map { String(format: "%02x", UInt8(truncatingIfNeeded: seed &* UInt64($0 + 1) >> 3)) }.joined()
        }
        try "mirrord:\(hex(0x9E37_79B9_7F4A_7C15))\n".write(toFile: keys, atomically: true, encoding: .utf8)
        try "mirrord:\(hex(0xC2B2_AE3D_27D4_EB4F))\n".write(toFile: wrongKeys, atomically: true, encoding: .utf8)
        let socket = path + "/kit.sock"
        let status = try NBDLocalServer.spawnAndWait(
            ["nbdkit", "-P", path + "/kit.pid", "-U", socket, "--tls=require", "--tls-psk=\(keys)", "memory", "4M"],
            log: path + "/nbdkit.log")
        guard status == 0 else { throw NBDLocalServerError("nbdkit exited with status \(status)") }
        let deadline = ContinuousClock.now + .seconds(20)
        var pid: pid_t = 0
        while pid == 0 || !FileManager.default.fileExists(atPath: socket) {
            let text = (try? String(contentsOfFile: path + "/kit.pid", encoding: .utf8)) ?? ""
            pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            guard ContinuousClock.now < deadline else { throw NBDLocalServerError("nbdkit never listened") }
            usleep(10_000)
        }
        self.pid = pid
        uri = "nbds+unix:///?socket=\(socket)"
    }

    func stop() { kill(pid, SIGTERM) }
}
