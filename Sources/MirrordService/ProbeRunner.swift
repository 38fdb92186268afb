import Foundation
import MirrorReplication
import MirrordConfig

/// `mirrord probe`: reads an export (this host's image file, or a peer's over NBD) and prints its
/// newest committed epoch, its sync generation and its owner, writing nothing: what a cluster
/// manager compares before it picks the host that runs the machine (ocf/mirrord's promote).
package enum ProbeRunner {
    /// Where the export is.
    package enum Source: Sendable, Hashable, CustomStringConvertible {
        /// An image file on this host, opened read-only.
        case image(path: String)
        /// An NBD URI.
        case export(uri: String)

        /// The path, or the URI without its secrets.
        package var description: String {
            switch self {
            case .image(let path): path
            case .export(let uri): NBDURI.redacted(uri)
            }
        }
    }

    /// The command's exit status.
    package enum ExitStatus: Int32, Sendable, CaseIterable {
        /// The export holds a committed epoch; its line was printed.
        case committed = 0
        /// The export could not be read (a missing file, no answer, an I/O error), holds data that
        /// is not mirrord's, or the configuration (for an `nbds://` export's credentials) was
        /// rejected; one line on stderr.
        case failure = 1
        /// The export is readable but holds no committed epoch (blank, or its primary stopped
        /// before its sync's first commit); its line was printed, with `epoch=none`.
        case noCommittedEpoch = 2

        /// One line per status, for `--help` and the README.
        package static let summary =
            "0 a committed epoch (printed); 2 no committed epoch (printed, epoch=none); 1 the export cannot be read "
            + "or is not mirrord's; 64 bad flags"
    }

    /// Probes `source`: an `nbds://` export with the credentials of `configuration`; a call that
    /// waits on an NBD server longer than `timeout` fails. The export is never written.
    package static func probe(
        _ source: Source, configuration: MirrordConfiguration, timeout: Duration
    ) throws(ExportError) -> ExportProbe {
        let name = source.description
        let device: any ExportDevice
        switch source {
        case .image(let path): device = try FileExportDevice(path: path, readOnly: true)
        case .export(let uri):
            do {
                device = try NBDExportDevice(
                    uri: uri, tls: NBDURI(uri)?.scheme.usesTLS == true ? configuration.remote.tls : nil,
                    stallTimeout: timeout)
            } catch {
                // libnbd's message may quote the URI: said once, without its secrets.
                throw ExportError(error.kind, "probe \(name)", error.reason)
            }
        }
        return try ExportProbe.read(device, name: name, operation: "probe")
    }

    /// The one line for `probe`: `epoch=E generation=G owner=HOST machine_id=ID pending=N`, with
    /// `epoch=none` when there is no committed epoch (and `generation=0 owner=none` for a blank
    /// export). Fixed order, no spaces inside a value: a shell reads it with `sed` or `read`.
    package static func line(_ probe: ExportProbe) -> String {
        let epoch = probe.newest.map { "\($0.epoch)" } ?? "none"
        guard let header = probe.header else {
            return "epoch=none generation=0 owner=none machine_id=none pending=0"
        }
        let host = header.owner.hostname.isEmpty ? "unknown" : header.owner.hostname.filter { !$0.isWhitespace }
        let id = header.owner.machineID.isEmpty ? "none" : header.owner.machineID
        return "epoch=\(epoch) generation=\(header.generation) owner=\(host) machine_id=\(id) "
            + "pending=\(probe.pending.count)"
    }

    /// `probe` as one JSON object: `source`, `epoch` (null: none), `generation`, `owner` (null for a
    /// blank export: `hostname`, `machine_id`, `pid`, `since`), `pending_epochs`, `header` (whether
    /// the export has a mirrord header).
    package static func json(_ probe: ExportProbe, source: Source) -> String {
        let object = ProbeJSON(
            source: source.description, header: probe.header != nil, epoch: probe.newest?.epoch,
            generation: probe.header?.generation ?? 0,
            owner: probe.header.map {
                ProbeJSON.Owner(
                    hostname: $0.owner.hostname, machineID: $0.owner.machineID, pid: $0.owner.pid,
                    since: $0.owner.since)
            }, pendingEpochs: probe.pending.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain fields cannot fail.
        let data = (try? encoder.encode(object)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs `mirrord probe`: the configuration at `configPath` (only an `nbds://` export needs it,
    /// for its credentials), the probe, its line (or JSON) on stdout. Returns the exit status.
    package static func run(
        _ source: Source, configPath: String?, json: Bool, timeout: Duration,
        environment: [String: String] = ProcessEnvironment.current
    ) -> ExitStatus {
        var configuration = MirrordConfiguration()
        if case .export(let uri) = source, NBDURI(uri)?.scheme.usesTLS == true {
            do {
                configuration = try ConfigurationLoader.load(path: configPath, environment: environment)
            } catch {
                printError("mirrord: error: probe \(source): configuration rejected: \(error)")
                return .failure
            }
        }
        let probe: ExportProbe
        do {
            probe = try Self.probe(source, configuration: configuration, timeout: timeout)
        } catch {
            printError("mirrord: error: \(error)")
            return .failure
        }
        _ = writeStandardOutput((json ? Self.json(probe, source: source) : line(probe)) + "\n")
        return probe.newest == nil ? .noCommittedEpoch : .committed
    }
}

/// The JSON `mirrord probe --json` prints.
private struct ProbeJSON: Encodable {
    /// The header's owner record.
    struct Owner: Encodable {
        var hostname: String
        var machineID: String
        var pid: Int32
        var since: UInt64

        enum CodingKeys: String, CodingKey {
            case hostname, pid, since
            case machineID = "machine_id"
        }
    }

    var source: String
    var header: Bool
    var epoch: UInt64?
    var generation: UInt64
    var owner: Owner?
    var pendingEpochs: Int

    enum CodingKeys: String, CodingKey {
        case source, header, epoch, generation, owner
        case pendingEpochs = "pending_epochs"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encode(header, forKey: .header)
        // null, not absent, when there is none: a reader tells "none" from a missing key.
        try container.encode(epoch, forKey: .epoch)
        try container.encode(generation, forKey: .generation)
        try container.encode(owner, forKey: .owner)
        try container.encode(pendingEpochs, forKey: .pendingEpochs)
    }
}
