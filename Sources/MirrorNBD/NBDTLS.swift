import CNBD

/// The credentials of a TLS session with the server, for the `nbds://`, `nbds+unix://` and
/// `nbds+vsock://` URIs: what libnbd's `nbd_set_tls_certificates` and `nbd_set_tls_psk_file`
/// take. Given to ``NBDExport``, TLS is required (`LIBNBD_TLS_REQUIRE`): a server that offers no
/// TLS, or a URI without it, fails the connect.
package enum NBDTLS: Sendable, Hashable {
    /// X.509: a directory holding `ca-cert.pem` (the authority that signed the server's
    /// certificate) and, for a server that checks its clients (nbd-server's `cacertfile`),
    /// `client-cert.pem` and `client-key.pem`. Over TCP libnbd checks the server's certificate
    /// against the CA and the URI's host name or address; over a Unix socket it has no name to
    /// check.
    case certificates(directory: String)
    /// A pre-shared key: a file of `username:hexkey` lines (`psktool`'s format), the key taken
    /// from the line of `username` (nil: the URI's user part, `nbds://alice@host/…`, else the
    /// local user's name). nbdkit and qemu-nbd serve PSK; Debian's nbd-server 3.24 does not.
    case pskFile(path: String, username: String? = nil)

    /// The credentials as a message names them.
    package var description: String {
        switch self {
        case .certificates(let directory): "TLS with the certificates in \(directory)"
        case .pskFile(let path, let username?): "TLS with the key of \(username) in \(path)"
        case .pskFile(let path, nil): "TLS with the pre-shared key in \(path)"
        }
    }

    /// Sets the credentials on `handle` and requires TLS, before the connect: TLS required for
    /// the session (`nbd_set_tls`) and for the URI (`nbd_set_uri_allow_tls`, so a plain `nbd://`
    /// URI given credentials is refused rather than connected in cleartext).
    func configure(_ handle: OpaquePointer) -> Bool {
        guard nbd_set_tls(handle, Int32(LIBNBD_TLS_REQUIRE)) != -1,
            nbd_set_uri_allow_tls(handle, Int32(LIBNBD_TLS_REQUIRE)) != -1
        else { return false }
        switch self {
        case .certificates(let directory):
            return nbd_set_tls_certificates(handle, directory) != -1
        case .pskFile(let path, let username):
            guard nbd_set_tls_psk_file(handle, path) != -1 else { return false }
            if let username { return nbd_set_tls_username(handle, username) != -1 }
            return true
        }
    }
}
