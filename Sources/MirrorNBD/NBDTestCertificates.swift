import Foundation

/// X.509 credentials for a TLS test, made with `openssl` in a directory: a CA of its own, a
/// server certificate for one address (its subjectAltName, which libnbd checks over TCP) and a
/// client certificate, laid out as the two sides read them: `client/` as libnbd's
/// `nbd_set_tls_certificates` directory (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`),
/// `server/` for nbd-server's `certfile`, `keyfile` and `cacertfile`.
///
/// Two sets made apart have different CAs: each refuses the other's certificates.
package struct NBDTestCertificates: Sendable {
    /// The directory for libnbd (``NBDTLS/certificates(directory:)``).
    package let clientDirectory: String
    /// The server's certificate (nbd-server's `certfile`).
    package let serverCertificate: String
    /// The server's key (`keyfile`).
    package let serverKey: String
    /// The CA's certificate, which the server checks clients against (`cacertfile`).
    package let caCertificate: String

    /// Makes a CA and its two certificates under `directory`, the server's for `serverAddress`
    /// (an IP address); ECDSA P-256 keys, valid for two days.
    package init(in directory: URL, serverAddress: String = "127.0.0.1") throws {
        let root = directory.path
        let client = "\(root)/client"
        let server = "\(root)/server"
        for path in [client, server] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        let log = "\(root)/openssl.log"
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        func run(_ arguments: [String]) throws {
            let status = try NBDLocalServer.spawnAndWait(["openssl"] + arguments, log: log)
            guard status == 0 else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw NBDLocalServerError("openssl \(arguments[0]) exited with status \(status): \(text)")
            }
        }
        try "subjectAltName=IP:\(serverAddress)\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"
            .write(toFile: "\(root)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n"
            .write(toFile: "\(root)/client.ext", atomically: true, encoding: .utf8)
        try run(
            ["req", "-x509"] + key + [
                "-days", "2", "-subj", "/CN=mirrord test CA", "-keyout", "\(root)/ca-key.pem", "-out",
                "\(client)/ca-cert.pem",
            ])
        for (name, directory, subject) in [("server", server, serverAddress), ("client", client, "mirrord")] {
            try run(
                ["req"] + key + [
                    "-subj", "/CN=\(subject)", "-keyout", "\(directory)/\(name)-key.pem", "-out", "\(root)/\(name).csr",
                ])
            try run([
                "x509", "-req", "-in", "\(root)/\(name).csr", "-CA", "\(client)/ca-cert.pem", "-CAkey",
                "\(root)/ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", "\(root)/\(name).ext", "-out",
                "\(directory)/\(name)-cert.pem",
            ])
        }
        clientDirectory = client
        serverCertificate = "\(server)/server-cert.pem"
        serverKey = "\(server)/server-key.pem"
        caCertificate = "\(client)/ca-cert.pem"
    }
}
