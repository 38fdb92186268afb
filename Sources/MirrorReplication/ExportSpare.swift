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
    /// The journal on the export (nil until it is first reached, and again once its connection
    /// failed), and the sync generation it last had: what a reconnect compares with.
    private let journal: Mutex<Reached>

    /// The export as reached.
    private struct Reached {
        var journal: EpochJournal?
        var generation: UInt64?
    }
    private let layout: ExportLayout
    private let owner: ExportOwner
    private let applier: EpochJournal.Applier
    private let avoiding: UInt64?
    private let tookOverFrom: ExportOwner?
    /// Whether the first sync refuses an export that holds a committed epoch (a machine started
    /// anew with its peer away: nothing compared the export with anything).
    private let keepsCommittedEpochs: Bool
    private let connect: (@Sendable () throws(ExportError) -> any ExportDevice)?
    /// Set by ``lastEpochFollows()`` (from the stopping thread, while the shipping thread holds
    /// the journal in a commit): that commit leaves the rest of its frames in the journal.
    private let lastFollows = Atomic<Bool>(false)

    /// The spare behind `journal` (which has claimed its export for `owner`); `connect` reaches
    /// the export anew for ``reconnect()`` (nil: it cannot be reached again).
    package init(
        journal: sending EpochJournal, owner: ExportOwner,
        connect: (@Sendable () throws(ExportError) -> any ExportDevice)? = nil
    ) {
        name = journal.name
        epochCapacity = journal.layout.journalFrames
        layout = journal.layout
        applier = journal.applier
        avoiding = nil
        tookOverFrom = nil
        keepsCommittedEpochs = false
        self.owner = owner
        self.connect = connect
        self.journal = Mutex(Reached(journal: journal, generation: journal.header.generation))
    }

    /// A spare not reached yet, named `name` and laid out as `layout`: the first call that needs
    /// it (a sync's start, a reconnect) reaches it with `connect` and claims it for `owner`. After
    /// a takeover, `avoiding` is the generation of the export this host took over and runs from:
    /// a `memory.spare` that names that same export is refused (the machine's image would be
    /// written under it), as a failure retried later, never as one that ends the service, and
    /// every sync gets a larger generation than it (``EpochJournal``); and
    /// `tookOverFrom` is the host it took over from, whose export it may claim even if that host
    /// owned it (see ``EpochJournal``). With `keepsCommittedEpochs` (a machine started anew while
    /// the peer host was away), the first sync refuses an export that holds a committed epoch, as a
    /// failure retried later: nothing compared that epoch with this machine, and it may be the only
    /// copy of what another run released.
    package init(
        name: String, layout: ExportLayout, owner: ExportOwner, applier: EpochJournal.Applier = .primary,
        avoiding: UInt64? = nil, tookOverFrom: ExportOwner? = nil, keepsCommittedEpochs: Bool = false,
        connect: @escaping @Sendable () throws(ExportError) -> any ExportDevice
    ) {
        self.name = name
        epochCapacity = layout.journalFrames
        self.layout = layout
        self.owner = owner
        self.applier = applier
        self.avoiding = avoiding
        self.tookOverFrom = tookOverFrom
        self.keepsCommittedEpochs = keepsCommittedEpochs
        self.connect = connect
        journal = Mutex(Reached())
    }

    package func reconnect() throws(SpareStoreError) -> Bool {
        do {
            // Claimed again: refused if a takeover made another host its owner meanwhile. The
            // same generation in its header: the sync this primary last committed to.
            return try journal.withLock { (current) throws(ExportError) -> Bool in
                let opened = try open(firstSync: current.generation == nil)
                current.journal = opened
                defer { current.generation = opened.header.generation }
                return current.generation != nil && opened.header.generation == current.generation
            }
        } catch {
            throw Self.spareError(error, "reconnect to \(name)")
        }
    }

    /// Reaches the export and claims it: a journal on it. `firstSync`: this spare has not reached
    /// the export before (once it has, and found no committed epoch to keep, its own sync follows:
    /// later reaches do not probe again).
    private func open(firstSync: Bool) throws(ExportError) -> EpochJournal {
        guard let connect else {
            throw ExportError(.io, "reach \(name)", "no way to reach it again")
        }
        let device = try connect()
        if keepsCommittedEpochs && firstSync,
            let position = try ExportProbe.read(device, name: name, operation: "reach").position
        {
            throw ExportError(
                .holdsEpoch, "sync to \(name)",
                "the export holds a committed epoch (\(position)) that this machine, started anew with its peer "
                    + "away (--spare-later), would overwrite; it stays simplex: take the machine over from that "
                    + "epoch, or wipe the export to sync to it")
        }
        let opened = try EpochJournal(
            device: device, name: name, layout: layout, owner: owner, applier: applier,
            tookOverFrom: tookOverFrom, after: avoiding ?? 0)
        if let avoiding, opened.header.generation == avoiding {
            throw ExportError(
                .ownImage, "open \(name)",
                "memory.spare names the export this host took over and runs from (generation \(avoiding)): "
                    + "point memory.spare at the other host's export")
        }
        return opened
    }

    package func beginSync() throws(SpareStoreError) {
        lastFollows.store(false, ordering: .releasing)
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
            try journal.commit(
                epoch: epoch, frameList: frameList, staged: staged,
                cutShort: { self.lastFollows.load(ordering: .acquiring) })
        }
    }

    /// The commit in flight stops putting its frames in place at its next batch, and leaves
    /// them in the journal: the last epoch's record then says to replay both, so that the stop
    /// does not wait for those writes (one request a frame) with every CPU stopped.
    package func lastEpochFollows() {
        lastFollows.store(true, ordering: .releasing)
    }

    /// The last epoch stays in the journal: a takeover replays it from there, with the epoch
    /// before it when the stop cut that one short (its record says which are not in place), so
    /// writing its frames in place as well would only lengthen the stop (one request a frame).
    package func commitLast(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        try withJournal("commit epoch \(epoch) to") { (journal) throws(ExportError) in
            try journal.commit(epoch: epoch, frameList: frameList, staged: staged, inPlace: false)
        }
    }

    package func read(frames: Range<Int>, into buffer: UnsafeMutableRawPointer) throws(SpareStoreError) -> UInt64 {
        let bytes = UnsafeMutableRawBufferPointer(start: buffer, count: frames.count * layout.frameSize)
        do {
            return try journal.withLock { (current) throws(ExportError) -> UInt64 in
                let journal = try Self.reached(&current, open)
                do throws(ExportError) {
                    let epoch = try journal.imageEpoch()
                    try journal.device.read(into: bytes, at: layout.imageOffset(frame: frames.lowerBound))
                    return epoch
                } catch {
                    Self.failed(&current, error)
                    throw error
                }
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
            try journal.withLock { (current) throws(ExportError) in
                let journal = try Self.reached(&current, open)
                do throws(ExportError) {
                    try body(journal)
                    current.generation = journal.header.generation
                } catch {
                    Self.failed(&current, error)
                    throw error
                }
            }
        } catch {
            throw Self.spareError(error, "\(what) \(name)")
        }
    }

    /// The journal in `current`, reached first (with `open`, told whether it was ever reached)
    /// when it has not been yet or its connection failed.
    private static func reached(
        _ current: inout Reached, _ open: (_ firstSync: Bool) throws(ExportError) -> EpochJournal
    )
        throws(ExportError) -> EpochJournal
    {
        if let journal = current.journal { return journal }
        let journal = try open(current.generation == nil)
        current.journal = journal
        current.generation = journal.header.generation
        return journal
    }

    /// After `error`: an I/O failure drops the journal (its connection takes no more calls after a
    /// stall), so the next call reaches the export anew; a reconnect compares the generation it
    /// finds with the one kept.
    private static func failed(_ current: inout Reached, _ error: ExportError) {
        if error.kind == .io { current.journal = nil }
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
        case .noCommittedEpoch, .corrupt, .ownImage, .holdsEpoch, .leftInJournal: kind = .failed
        }
        return SpareStoreError(kind, operation: operation, reason: error.reason)
    }
}
