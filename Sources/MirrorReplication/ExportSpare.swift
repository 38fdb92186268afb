import MirrorCore
import Synchronization

/// The spare on another host as the engine sees it (`MirrorCore.SpareStore`): an export written
/// through an ``EpochJournal``, the sync's frames in place, each epoch committed atomically.
///
/// The engine and the replicator's shipping thread take turns with it; the lock makes each call
/// whole and orders them.
package final class ExportSpare: SpareStore {
    /// The export's name in messages: its URI or its file's path.
    package let name: String
    /// The journal half's frames: the largest epoch.
    package let epochCapacity: Int
    private let journal: Mutex<EpochJournal>
    private let layout: ExportLayout
    private let owner: ExportOwner
    private let connect: (@Sendable () throws(ExportError) -> any ExportDevice)?

    /// The spare behind `journal` (which has claimed its export for `owner`); `connect` reaches
    /// the export anew for ``reconnect()`` (nil: it cannot be reached again).
    package init(
        journal: sending EpochJournal, owner: ExportOwner,
        connect: (@Sendable () throws(ExportError) -> any ExportDevice)? = nil
    ) {
        name = journal.name
        epochCapacity = journal.layout.journalFrames
        layout = journal.layout
        self.owner = owner
        self.connect = connect
        self.journal = Mutex(journal)
    }

    package func reconnect() throws(SpareStoreError) -> Bool {
        guard let connect else {
            throw SpareStoreError(.unreachable, operation: "reconnect to \(name)", reason: "no way to reach it again")
        }
        do {
            let device = try connect()
            // Claimed again: refused if a takeover made another host its owner meanwhile. The
            // same generation in its header: the sync this primary last committed to.
            return try journal.withLock { (current) throws(ExportError) -> Bool in
                let generation = current.header.generation
                current = try EpochJournal(
                    device: device, name: name, layout: layout, owner: owner, applier: current.applier)
                return current.header.generation == generation
            }
        } catch {
            throw Self.spareError(error, "reconnect to \(name)")
        }
    }

    package func beginSync() throws(SpareStoreError) {
        try withJournal("begin a sync on") { (journal) throws(ExportError) in try journal.beginSync() }
    }

    package func write(frames: Range<Int>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try withJournal("write frames to") { (journal) throws(ExportError) in
            try journal.writeInPlace(frames: frames, of: memory)
        }
    }

    package func write(frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try withJournal("write frames to") { (journal) throws(ExportError) in
            try journal.writeInPlace(frameList: frameList, of: memory)
        }
    }

    package func flush() throws(SpareStoreError) {
        try withJournal("flush") { (journal) throws(ExportError) in try journal.flush() }
    }

    package func commit(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        try withJournal("commit epoch \(epoch) to") { (journal) throws(ExportError) in
            try journal.commit(epoch: epoch, frameList: frameList, staged: staged)
        }
    }

    package func read(frames: Range<Int>, into buffer: UnsafeMutableRawPointer) throws(SpareStoreError) -> UInt64 {
        let bytes = UnsafeMutableRawBufferPointer(start: buffer, count: frames.count * layout.frameSize)
        do {
            return try journal.withLock { (journal) throws(ExportError) -> UInt64 in
                let epoch = try journal.imageEpoch()
                try journal.device.read(into: bytes, at: layout.imageOffset(frame: frames.lowerBound))
                return epoch
            }
        } catch {
            throw Self.spareError(error, "read back from \(name)")
        }
    }

    /// Runs `body` on the journal under the lock, its failure as the engine's kind.
    private func withJournal(_ what: String, _ body: (EpochJournal) throws(ExportError) -> Void)
        throws(SpareStoreError)
    {
        do {
            try journal.withLock { (journal) throws(ExportError) in try body(journal) }
        } catch {
            throw Self.spareError(error, "\(what) \(name)")
        }
    }

    /// The engine's kind of an export's failure: the link or the spare host not answering (an
    /// I/O failure), a refusal that trying again does not change, or a failure that leaves only a
    /// sync from scratch (a standby behind, a damaged journal).
    static func spareError(_ error: ExportError, _ operation: String) -> SpareStoreError {
        let kind: SpareStoreError.Kind
        switch error.kind {
        case .io: kind = .unreachable
        // The standby on the spare host applies only the current generation's epochs: after a
        // new sync it never puts the last ones in place, so only a sync from scratch is safe.
        case .standbyBehind: kind = .failed
        case .tooSmall, .notMirrord, .owned, .inUse: kind = .refused
        case .noCommittedEpoch, .corrupt: kind = .failed
        }
        return SpareStoreError(kind, operation: operation, reason: error.reason)
    }
}
