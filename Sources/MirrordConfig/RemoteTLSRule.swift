#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rules of `remote.tls_certificates` and `remote.tls_psk_file`: an `nbds://` spare needs
/// exactly one of them, a spare without TLS none, and what it names must be there to read when the
/// configuration is loaded (libnbd would otherwise say so only at the connect, in its own words).
enum RemoteTLSRule {
    static let certificates = "remote.tls_certificates"
    static let pskFile = "remote.tls_psk_file"

    static func check(_ reader: inout FieldReader, _ remote: RemoteOptions) throws(ConfigurationError) {
        let hasCertificates = !remote.tlsCertificatesPath.isEmpty
        let hasPSK = !remote.tlsPSKFilePath.isEmpty
        let shown = QuotedValue(remote.redactedSpareURI)
        if hasCertificates && hasPSK {
            throw reader.error(
                pskFile,
                "give one of \(certificates) (X.509) and \(pskFile) (a pre-shared key), not both; set the other to \"\"",
                orKey: certificates)
        }
        let key = hasCertificates ? certificates : pskFile
        if remote.usesTLS {
            guard hasCertificates || hasPSK else {
                throw reader.error(
                    "memory.spare",
                    "\(shown) uses TLS and needs its credentials: set \(certificates) = \"DIR\" (ca-cert.pem, client-cert.pem, client-key.pem) or \(pskFile) = \"FILE\"",
                    orKey: certificates)
            }
        } else if hasCertificates || hasPSK {
            let why =
                remote.isRemote
                ? "\(shown) is cleartext; write the spare as nbds:// (nbds+unix://, nbds+vsock://) to use TLS, or set \(key) = \"\""
                : "TLS is for a spare on another host, memory.spare = \"nbds://HOST/EXPORT\"; set \(key) = \"\""
            throw reader.error(key, why, orKey: "memory.spare")
        }
        if hasCertificates, let problem = certificatesProblem(remote.tlsCertificatesPath) {
            throw reader.error(certificates, problem)
        }
        if hasPSK, let problem = fileProblem(remote.tlsPSKFilePath, what: "the pre-shared key file") {
            throw reader.error(pskFile, problem)
        }
        // libnbd looks the key up by the URI's user, else by getlogin(3), which a service without
        // a terminal does not have: name the user.
        if hasPSK, NBDURI(remote.spareURI)?.user == nil {
            throw reader.error(
                "memory.spare",
                "\(shown) names no user, whose key remote.tls_psk_file holds; write it in the URI, like \(NBDURI(remote.spareURI)?.scheme.rawValue ?? "nbds")://NAME@HOST/EXPORT",
                orKey: pskFile)
        }
    }

    /// Why the directory cannot serve as libnbd's certificates, or nil: it must be a readable
    /// directory with `ca-cert.pem` (the only file libnbd insists on); a client certificate needs
    /// its key beside it.
    static func certificatesProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(QuotedValue(path)): \(String(cString: strerror(errno)))" }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            return
                "\(QuotedValue(path)) is not a directory; name the directory that holds ca-cert.pem, client-cert.pem and client-key.pem"
        }
        guard access(path, R_OK | X_OK) == 0 else {
            return "\(QuotedValue(path)): cannot read the directory (\(String(cString: strerror(errno))))"
        }
        let file = { (name: String) in path.hasSuffix("/") ? path + name : path + "/" + name }
        if let problem = fileProblem(file("ca-cert.pem"), what: "the CA certificate") { return problem }
        if access(file("client-cert.pem"), F_OK) == 0 {
            return fileProblem(file("client-key.pem"), what: "the key of client-cert.pem")
        }
        return nil
    }

    /// Why `path` is not a regular file this process can read, or nil.
    static func fileProblem(_ path: String, what: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return "\(what), \(QuotedValue(path)): \(String(cString: strerror(errno)))"
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(what), \(QuotedValue(path)), is not a regular file" }
        guard access(path, R_OK) == 0 else {
            return "\(what), \(QuotedValue(path)): cannot read it (\(String(cString: strerror(errno))))"
        }
        return nil
    }
}
