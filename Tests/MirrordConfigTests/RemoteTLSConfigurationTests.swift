import Foundation
import MirrordConfig
import Testing

/// Credentials on disk for the configuration tests: a certificates directory with its three files
/// and a PSK file (their contents are not read by the loader, only that they can be read).
enum TLSFixture {
    /// The directory, made once for the test process.
    static let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mirrord-tls-config-\(getpid())"
        ).path
        try? FileManager.default.createDirectory(atPath: path + "/certs", withIntermediateDirectories: true)
        for name in ["ca-cert.pem", "client-cert.pem", "client-key.pem"] {
            _ = FileManager.default.createFile(atPath: "\(path)/certs/\(name)", contents: Data("pem\n".utf8))
        }
        _ = FileManager.default.createFile(atPath: "\(path)/spare.psk", contents: Data("mirrord:0123abcd\n".utf8))
        return path
    }()
    /// A directory as `remote.tls_certificates` takes it.
    static var certificates: String { directory + "/certs" }
    /// A file as `remote.tls_psk_file` takes it.
    static var pskFile: String { directory + "/spare.psk" }

    /// The environment that gives `uri` its credentials when it uses TLS (none otherwise).
    static func credentials(for uri: String) -> [String: String] {
        uri.hasPrefix("nbds") ? ["MIRRORD_REMOTE_TLS_CERTIFICATES": certificates] : [:]
    }
}

@Suite("TLS for the spare on another host: remote.tls_certificates, remote.tls_psk_file")
struct RemoteTLSConfigurationTests {
    @Test("an nbds:// spare takes either credential, read into the remote options")
    func accepted() throws {
        for scheme in ["nbds://m@h/x", "nbds+unix://m@/x?socket=/s", "nbds+vsock://m@2/x"] {
            let x509 = try parse(
                "[memory]\nspare = \"\(scheme)\"\n[remote]\ntls_certificates = \"\(TLSFixture.certificates)\"\n")
            #expect(x509.remote.tlsCertificatesPath == TLSFixture.certificates && x509.remote.usesTLS)
            let psk = try parse("[memory]\nspare = \"\(scheme)\"\n[remote]\ntls_psk_file = \"\(TLSFixture.pskFile)\"\n")
            #expect(psk.remote.tlsPSKFilePath == TLSFixture.pskFile)
        }
        // A trailing slash, and the environment's override.
        #expect(
            try parse(
                "[memory]\nspare = \"nbds://h/x\"\n",
                environment: ["MIRRORD_REMOTE_TLS_CERTIFICATES": TLSFixture.certificates + "/"]
            )
            .remote.tlsCertificatesPath == TLSFixture.certificates + "/")
        // Only ca-cert.pem is required (a server that does not check its clients).
        let caOnly = TLSFixture.directory + "/ca-only"
        try FileManager.default.createDirectory(atPath: caOnly, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: caOnly + "/ca-cert.pem", contents: Data("pem\n".utf8))
        #expect(error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(caOnly)\"\n") == nil)
    }

    @Test("an nbds:// spare without credentials is refused at memory.spare's line, naming both keys")
    func missing() {
        let refused = error("[memory]\nsize = \"1GiB\"\nspare = \"nbds://alice:pw@h/x\"\n[remote]\ntimeout = \"2s\"\n")
        #expect(
            refused?.description
                == "test.conf:3: memory.spare: \"nbds://alice:***@h/x\" uses TLS and needs its credentials: set remote.tls_certificates = \"DIR\" (ca-cert.pem, client-cert.pem, client-key.pem) or remote.tls_psk_file = \"FILE\""
        )
        #expect(error("[memory]\nspare = \"nbds+unix:///x?socket=/s\"\n")?.key == "memory.spare")
    }

    @Test("a pre-shared key needs the URI's user, whose key it is")
    func pskUser() {
        let refused = error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_psk_file = \"\(TLSFixture.pskFile)\"\n")
        #expect(
            refused?.description
                == "test.conf:2: memory.spare: \"nbds://h/x\" names no user, whose key remote.tls_psk_file holds; write it in the URI, like nbds://NAME@HOST/EXPORT"
        )
        #expect(NBDURI("nbds://mirrord:pw@h/x")?.user == "mirrord" && NBDURI("nbds://@h/x")?.user == nil)
        #expect(NBDURI("nbds+unix://alice@/x?socket=/s")?.user == "alice")
    }

    @Test("both credentials are refused: give one")
    func both() {
        let refused = error(
            "[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(TLSFixture.certificates)\"\ntls_psk_file = \"\(TLSFixture.pskFile)\"\n"
        )
        #expect(refused?.line == 5 && refused?.key == "remote.tls_psk_file")
        #expect(
            refused?.message
                == "give one of remote.tls_certificates (X.509) and remote.tls_psk_file (a pre-shared key), not both; set the other to \"\""
        )
    }

    @Test("credentials with a cleartext spare, or no remote spare, are refused: use nbds://")
    func cleartext() {
        let plain = error(
            "[memory]\nspare = \"nbd://h/x\"\n[remote]\ntls_certificates = \"\(TLSFixture.certificates)\"\n")
        #expect(
            plain?.description
                == "test.conf:4: remote.tls_certificates: \"nbd://h/x\" is cleartext; write the spare as nbds:// (nbds+unix://, nbds+vsock://) to use TLS, or set remote.tls_certificates = \"\""
        )
        let unix = error(
            "[memory]\nspare = \"nbd+unix:///x?socket=/s\"\n[remote]\ntls_psk_file = \"\(TLSFixture.pskFile)\"\n")
        #expect(unix?.line == 4 && unix?.key == "remote.tls_psk_file")
        let local = error("[remote]\ntls_psk_file = \"\(TLSFixture.pskFile)\"\n")
        #expect(
            local?.description
                == "test.conf:2: remote.tls_psk_file: TLS is for a spare on another host, memory.spare = \"nbds://HOST/EXPORT\"; set remote.tls_psk_file = \"\""
        )
    }

    @Test("what the keys name must be there to read, said in one line")
    func unreadable() throws {
        let missing = TLSFixture.directory + "/nosuch"
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(missing)\"\n")?.description
                == "test.conf:4: remote.tls_certificates: \"\(missing)\": No such file or directory")
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(TLSFixture.pskFile)\"\n")?.message
                == "\"\(TLSFixture.pskFile)\" is not a directory; name the directory that holds ca-cert.pem, client-cert.pem and client-key.pem"
        )
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_psk_file = \"\(missing)\"\n")?.description
                == "test.conf:4: remote.tls_psk_file: the pre-shared key file, \"\(missing)\": No such file or directory"
        )
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_psk_file = \"\(TLSFixture.certificates)\"\n")?
                .message
                == "the pre-shared key file, \"\(TLSFixture.certificates)\", is not a regular file")
        // A directory without the CA's certificate, and a client certificate without its key.
        let empty = TLSFixture.directory + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(empty)\"\n")?.message
                == "the CA certificate, \"\(empty)/ca-cert.pem\": No such file or directory")
        let keyless = TLSFixture.directory + "/keyless"
        try FileManager.default.createDirectory(atPath: keyless, withIntermediateDirectories: true)
        for name in ["ca-cert.pem", "client-cert.pem"] {
            _ = FileManager.default.createFile(atPath: "\(keyless)/\(name)", contents: Data("pem\n".utf8))
        }
        #expect(
            error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_certificates = \"\(keyless)\"\n")?.message
                == "the key of client-cert.pem, \"\(keyless)/client-key.pem\": No such file or directory")
        // Unreadable (as root, access(2) reads anything: checked only as another user).
        if geteuid() != 0 {
            let locked = TLSFixture.directory + "/locked.psk"
            _ = FileManager.default.createFile(
                atPath: locked, contents: Data("k\n".utf8), attributes: [.posixPermissions: 0])
            #expect(
                error("[memory]\nspare = \"nbds://h/x\"\n[remote]\ntls_psk_file = \"\(locked)\"\n")?.message
                    == "the pre-shared key file, \"\(locked)\": cannot read it (Permission denied)")
        }
    }

    @Test("a URI's own tls-certificates= is refused, pointing at the key")
    func uriParameter() {
        #expect(
            error("[memory]\nspare = \"nbds://h/x?tls-certificates=/etc/c\"\n")?.message
                == "\"nbds://h/x?tls-certificates=/etc/c\": tls-certificates= names a local file, which mirrord never lets a URI read; drop it and set remote.tls_certificates instead"
        )
    }
}
