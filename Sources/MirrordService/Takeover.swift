import MirrorCore
import MirrorEmulation
import MirrorReplication
import MirrordConfig

/// What `mirrord takeover` is told beyond the configuration file: where the export is and the
/// journal's size. The seam for the configuration: once `memory.spare` and `remote.staging` exist,
/// the command fills these from them (its flags still override).
package struct TakeoverOptions: Sendable, Hashable {
    /// Where the export is.
    package enum Source: Sendable, Hashable, CustomStringConvertible {
        /// The image file behind this host's `nbd-server`: replayed in place, then mapped private
        /// as the active module (no copy).
        case image(path: String)
        /// The export's NBD URI: replayed over NBD, then read into anonymous memory.
        case export(uri: String)

        /// The path or the URI, as messages name the export.
        package var description: String {
            switch self {
            case .image(let path): path
            case .export(let uri): uri
            }
        }
    }

    /// The default staging area (and so each journal half): 256 MiB, until `remote.staging` exists.
    package static let defaultStagingBytes = 256 << 20

    /// Where the export is.
    package var source: Source
    /// `remote.staging`: the largest epoch, which sizes the journal's halves; the export's header
    /// must agree.
    package var stagingBytes: Int
    /// Stop after the recovery: print the epoch and exit (tests, checkers).
    package var recoverOnly: Bool
    /// Wait to be asked over the control socket (`take-over`) before reading the export: started
    /// ahead on the host that would take over, so that a takeover costs a round trip on the socket
    /// rather than a process's start (``TakeoverOnRequest``).
    package var onRequest: Bool
    /// With ``onRequest``: the FIFO whose line `go TOKEN` tells it to go as a `take-over` request
    /// would (``TakeoverGoFIFO``), or nil: asked over the control socket only.
    package var goFIFO: String?
    /// With ``goFIFO``: where a takeover told to go records its start (a `take-over`'s
    /// `start_record`), or nil: none recorded.
    package var goStartRecord: String?
    /// When the command started, or, with ``onRequest``, when it was asked (monotonic
    /// nanoseconds): `takeover_ms` counts from here.
    package var startedAt: UInt64

    /// Options for a takeover of `source`.
    package init(
        source: Source, stagingBytes: Int = Self.defaultStagingBytes, recoverOnly: Bool = false,
        onRequest: Bool = false, goFIFO: String? = nil, goStartRecord: String? = nil,
        startedAt: UInt64 = MonotonicClock.nanoseconds()
    ) {
        self.source = source
        self.stagingBytes = stagingBytes
        self.recoverOnly = recoverOnly
        self.onRequest = onRequest
        self.goFIFO = goFIFO
        self.goStartRecord = goStartRecord
        self.startedAt = startedAt
    }
}

/// Why a takeover was refused, in one line; nothing was changed on the export.
package struct TakeoverRefusal: Error, CustomStringConvertible, Sendable {
    /// The line.
    package var description: String
    /// The export's error behind it, when there is one.
    package var kind: ExportError.Kind?

    init(_ description: String, kind: ExportError.Kind? = nil) {
        self.description = description
        self.kind = kind
    }

    /// `"takeover refused: /srv/spare.img: the export holds no committed epoch …"`: the export's
    /// error without its own "take over" in front; another operation (`open …`) is kept.
    init(_ error: ExportError) {
        let prefix = "take over "
        let what =
            error.operation.hasPrefix(prefix)
            ? "\(error.operation.dropFirst(prefix.count)): \(error.reason)" : error.description
        self.init("takeover refused: \(what)", kind: error.kind)
    }
}

/// What a takeover's recovery left: the export at its last committed epoch, owned by this host.
package struct TakeoverRecovery: Sendable {
    /// Where the export is.
    package var source: TakeoverOptions.Source
    /// The export, open.
    package var device: any ExportDevice
    /// What the recovery found and did.
    package var outcome: ExportRecovery.Outcome
    /// How long the recovery took (nanoseconds).
    package var nanoseconds: UInt64

    /// Makes the replayed image and its new owner durable, after a recovery that was not
    /// (``Takeover/recover(_:configuration:owner:durable:)``).
    package func makeDurable() throws(ExportError) {
        try device.flush()
    }

    /// The one line `--recover-only` prints.
    package var line: String {
        "recovered epoch \(outcome.epoch) of \(source): \(outcome.framesReplayed) frames replayed in "
            + "\(format(Double(nanoseconds) / 1e6, 1)) ms (generation \(outcome.generation), previous owner \(outcome.previousOwner))"
    }
}

/// `mirrord takeover`'s steps: the recovery of the export, then the machine built from its image.
package enum Takeover {
    /// Opens the export, checks its header against the configuration (frame size, frame count,
    /// journal), then brings it to its last committed epoch (every pending epoch's frames checked
    /// first) with this host as its new owner. Refused, changing nothing, when the export is
    /// missing or not mirrord's, disagrees with the configuration, holds no committed epoch, or
    /// its journal is damaged. Not `durable`, the replayed image and its new owner are left to
    /// ``TakeoverRecovery/makeDurable()``: the machine's CPUs may run first, since until the
    /// machine's own first epoch commits nothing it runs is released, and a takeover cut short
    /// before the flush replays the same journal again.
    package static func recover(
        _ options: TakeoverOptions, configuration: MirrordConfiguration, owner: ExportOwner = .local(),
        durable: Bool = true
    ) throws(TakeoverRefusal) -> TakeoverRecovery {
        let begin = MonotonicClock.nanoseconds()
        let name = options.source.description
        let device: any ExportDevice
        let header: ExportHeader
        do throws(ExportError) {
            device =
                switch options.source {
                case .image(let path): try lockedFile(path)
                case .export(let uri):
                    // The primary's credentials, for an nbds:// export (the takeover reads its
                    // configuration); a plain URI takes none.
                    try NBDExportDevice(
                        uri: uri, tls: NBDURI(uri)?.scheme.usesTLS == true ? configuration.remote.tls : nil)
                }
            header = try ExportRecovery.header(of: device, name: name)
        } catch {
            throw TakeoverRefusal(error)
        }
        if let mismatch = mismatch(header.layout, configuration: configuration, stagingBytes: options.stagingBytes) {
            throw TakeoverRefusal("takeover refused: \(name): \(mismatch); nothing was changed", kind: .notMirrord)
        }
        do throws(ExportError) {
            let outcome = try ExportRecovery.recover(device, name: name, newOwner: owner, durable: durable)
            return TakeoverRecovery(
                source: options.source, device: device, outcome: outcome,
                nanoseconds: MonotonicClock.nanoseconds() &- begin)
        } catch {
            throw TakeoverRefusal(error)
        }
    }

    /// The image file at `path`, for this process alone while it runs from it: no standby puts
    /// epochs in place under the machine's copy-on-write mapping of it.
    private static func lockedFile(_ path: String) throws(ExportError) -> FileExportDevice {
        let file = try FileExportDevice(path: path)
        try file.lock(for: "take over")
        return file
    }

    /// How the export's layout disagrees with the configuration, naming both, or nil.
    static func mismatch(_ layout: ExportLayout, configuration: MirrordConfiguration, stagingBytes: Int) -> String? {
        let frameSize = EmulatedMachine.Options.frameSize
        let memory = configuration.machine.memorySize
        let image = layout.frameCount * layout.frameSize
        if layout.frameSize != frameSize || layout.frameCount * layout.frameSize != memory {
            return "the export's image is \(layout.frameCount) frames of \(layout.frameSize) bytes "
                + "(\(ByteCount.format(image))); memory.size is \(ByteCount.format(memory)) (\(memory / frameSize) frames of "
                + "\(frameSize) bytes): take over with the primary's configuration"
        }
        if layout.journalFrames * layout.frameSize != stagingBytes {
            return "the export's journal holds epochs of \(layout.journalFrames) frames "
                + "(staging \(ByteCount.format(layout.journalFrames * layout.frameSize))); --staging is "
                + "\(ByteCount.format(stagingBytes)) (\(stagingBytes / frameSize) frames): give the primary's remote.staging"
        }
        return nil
    }

    /// The machine for `configuration`, its active module the recovered image: the image file
    /// mapped private at the image's offset (no copy), or, over NBD, the image read into
    /// anonymous memory; no spare (it starts simplex). Its threads are not started.
    package static func makeMachine(
        _ configuration: MirrordConfiguration, from recovery: TakeoverRecovery
    ) throws(TakeoverMachineError) -> EmulatedMachine {
        var options = MachineFactory.options(for: configuration)
        let layout = recovery.outcome.layout
        switch recovery.source {
        case .image(let path): options.activeMemory = .image(path: path, offset: layout.imageOffset)
        case .export: options.activeMemory = .provided
        }
        let machine: EmulatedMachine
        do {
            machine = try EmulatedMachine(
                options: options, realMMU: MachineFactory.realMMU(for: configuration.backend))
        } catch {
            throw .hardware(error)
        }
        if case .export = recovery.source {
            let image = UnsafeMutableRawBufferPointer(start: machine.active.base, count: machine.active.byteCount)
            do {
                try recovery.device.readBulk(into: image, at: layout.imageOffset)
            } catch {
                machine.shutdown()
                throw .export(error)
            }
        }
        return machine
    }
}

/// Why the taken-over machine could not be built.
package enum TakeoverMachineError: Error, CustomStringConvertible {
    /// The machine itself (memory, threads, an image that cannot be mapped).
    case hardware(HardwareError)
    /// Reading the image over NBD.
    case export(ExportError)

    package var description: String {
        switch self {
        case .hardware(let error): "\(error)"
        case .export(let error): "\(error)"
        }
    }
}
