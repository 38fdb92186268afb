import MirrorCore
import MirrorNBD
import MirrorReplication
import MirrordConfig

#if canImport(Glibc)
import Glibc
#endif

extension RemoteOptions {
    /// The TLS credentials `remote.tls_certificates` or `remote.tls_psk_file` name, for libnbd;
    /// nil when neither is set (the loader has checked that an `nbds://` spare has exactly one).
    var tls: NBDTLS? {
        if !tlsCertificatesPath.isEmpty { return .certificates(directory: tlsCertificatesPath) }
        if !tlsPSKFilePath.isEmpty { return .pskFile(path: tlsPSKFilePath) }
        return nil
    }
}

/// Reaches the spare on another host that `memory.spare` names, at start-up: connects with
/// libnbd, checks the export (size, owner, contents) and claims it for this host. Nothing is
/// written until the first duplex begins its sync.
package enum RemoteSpareConnector {
    /// The spare for `configuration`, laid out for `geometry` with a journal of `remote.staging`;
    /// nil when `memory.spare` is empty (the machine's own spare module). Every refusal names
    /// the export and what is wrong.
    static func connect(_ configuration: MirrordConfiguration, geometry: MemoryGeometry) throws(ExportError)
        -> ExportSpare?
    {
        let remote = configuration.remote
        guard remote.isRemote else { return nil }
        let name = remote.redactedSpareURI
        let device: NBDExportDevice
        do {
            device = try NBDExportDevice(
                uri: remote.spareURI, tls: remote.tls, stallTimeout: .nanoseconds(Int64(remote.timeoutNanoseconds)))
        } catch {
            // libnbd's message may quote the URI: say it once, without its secrets.
            throw ExportError(error.kind, "connect to \(name)", error.reason)
        }
        if device.export.isReadOnly {
            throw ExportError(.notMirrord, "open \(name)", "the export is read-only; mirrord must write the spare")
        }
        let owner = ExportOwner.local()
        let journal = try EpochJournal(
            device: device, name: name, layout: layout(configuration, geometry), owner: owner, applier: applier(remote))
        return ExportSpare(journal: journal, owner: owner, connect: connector(remote))
    }

    /// The spare for `configuration` not reached yet (nil when `memory.spare` is empty), after a
    /// takeover or for `--spare-later`: the first duplex reaches it, and a spare host that is away
    /// (the former primary's, most likely) is retried as one lost. After a takeover, `avoiding` is
    /// the taken-over export's generation: a `memory.spare` naming that export is refused each
    /// time (``ExportSpare``); `tookOverFrom` the host taken over from, whose own export (owned by
    /// it after a takeover of its own) this host may claim. Started anew (`--spare-later`),
    /// `keepsCommittedEpochs`: the first sync refuses an export that holds a committed epoch.
    static func later(
        _ configuration: MirrordConfiguration, geometry: MemoryGeometry, avoiding: UInt64? = nil,
        tookOverFrom: ExportOwner? = nil, keepsCommittedEpochs: Bool = false
    ) -> ExportSpare? {
        let remote = configuration.remote
        guard remote.isRemote else { return nil }
        return ExportSpare(
            name: remote.redactedSpareURI, layout: layout(configuration, geometry), owner: .local(),
            applier: applier(remote), avoiding: avoiding, tookOverFrom: tookOverFrom,
            keepsCommittedEpochs: keepsCommittedEpochs, connect: connector(remote))
    }

    /// The export's layout: `geometry`'s image and journal halves of `remote.staging`.
    private static func layout(_ configuration: MirrordConfiguration, _ geometry: MemoryGeometry) -> ExportLayout {
        ExportLayout(
            frameSize: geometry.frameSize, frameCount: geometry.frameCount,
            journalFrames: configuration.replication.epochCapacity(frameSize: geometry.frameSize))
    }

    /// Reaches `memory.spare` anew, with its credentials and `remote.timeout`.
    private static func connector(_ remote: RemoteOptions) -> @Sendable () throws(ExportError) -> any ExportDevice {
        let uri = remote.spareURI
        let tls = remote.tls
        let timeout = Duration.nanoseconds(Int64(remote.timeoutNanoseconds))
        return { () throws(ExportError) -> any ExportDevice in
            try NBDExportDevice(uri: uri, tls: tls, stallTimeout: timeout)
        }
    }

    /// How often a primary with a standby reads the standby's mark while it waits for it.
    static let standbyPollNanoseconds: UInt64 = 100_000

    /// Who puts the epochs in place (`remote.standby`): a standby is waited for up to
    /// `remote.timeout` (its acknowledgement of a new sync, or the epoch whose journal half is
    /// needed again), read every 100 µs.
    package static func applier(_ remote: RemoteOptions) -> EpochJournal.Applier {
        guard remote.standby else { return .primary }
        let patience = Int(max(1, remote.timeoutNanoseconds / standbyPollNanoseconds))
        return .standby(patience: patience) { usleep(UInt32(standbyPollNanoseconds / 1_000)) }
    }
}
