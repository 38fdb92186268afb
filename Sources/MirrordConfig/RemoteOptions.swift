/// Where the spare lives when it is on another host, and how the service treats it (`memory.spare`,
/// `remote.timeout`, `remote.standby`, `remote.release_log`, `remote.tls_certificates`, `remote.tls_psk_file`). The epoch and the staging area are the engine's, in
/// `MirrorCore.ReplicationPolicy` (``MirrordConfiguration/replication``).
///
/// None of these can change on a running service: a reload says they wait for a restart.
package struct RemoteOptions: Sendable, Hashable {
    /// `memory.spare`: the NBD URI of the spare's export on another host, as libnbd's
    /// `nbd_connect_uri` reads it (checked by ``NBDURI``); `""`: the local emulated spare.
    package var spareURI = ""
    /// `remote.timeout`: an export that does not answer within this many nanoseconds counts as
    /// unreachable.
    package var timeoutNanoseconds: UInt64 = 1_000_000_000
    /// `remote.standby`: whether `mirrord standby` on the spare host puts each committed epoch in
    /// place from the export's file (the primary sends every frame once, and a new sync waits for
    /// the standby's acknowledgement); false: the primary puts them in place over the link, which
    /// any NBD server serves.
    package var standby = false
    /// `remote.release_log`: the file where the emulated workload's released stores are recorded as
    /// each epoch commits (output commit), for a checker to read after a takeover; `""`: none.
    package var releaseLogPath = ""
    /// `remote.tls_certificates`: the directory of X.509 credentials for an `nbds://` spare, as
    /// libnbd's `nbd_set_tls_certificates` reads it (`ca-cert.pem`, `client-cert.pem`,
    /// `client-key.pem`); `""`: none.
    package var tlsCertificatesPath = ""
    /// `remote.tls_psk_file`: the pre-shared key file for an `nbds://` spare, as libnbd's
    /// `nbd_set_tls_psk_file` reads it (`username:hexkey` lines); `""`: none.
    package var tlsPSKFilePath = ""

    /// The defaults: a local spare.
    package init() {}

    /// Whether the spare's URI asks for TLS (`nbds://`, `nbds+unix://`, `nbds+vsock://`).
    package var usesTLS: Bool { NBDURI(spareURI)?.scheme.usesTLS ?? false }

    /// Whether the spare is on another host.
    package var isRemote: Bool { !spareURI.isEmpty }

    /// Whether the spare is reached in cleartext over a network: `nbd://` or `nbd+vsock://` to a
    /// host other than this one. Not an error (a private link may be trusted), but worth one
    /// warning in the journal; `nbds://` and Unix sockets never warn.
    package var warnsCleartext: Bool {
        guard let uri = NBDURI(spareURI) else { return false }
        return !uri.scheme.usesTLS && !uri.scheme.usesUnixSocket && !uri.isLoopback
    }

    /// ``spareURI`` as the journal and messages may show it: without a password.
    package var redactedSpareURI: String { NBDURI.redacted(spareURI) }
}
