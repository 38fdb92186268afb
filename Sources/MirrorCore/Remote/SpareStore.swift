/// A spare that is not a module of this machine: the memory image on another host, reached over
/// a link, brought into the active module's state by a sync and then kept there by epochs.
///
/// The engine writes the spare through this protocol only, so that a remote duplex runs against
/// any store: an NBD export (`MirrorReplication`), or a file or memory in tests. A store is used
/// by one thread at a time (the engine's, then the replicator's shipping thread), handed over
/// with the happens-before of a thread start or a join.
///
/// Frame `f` of `memory` is at `memory + f × frameSize`; frame lists are ascending.
public protocol SpareStore: AnyObject, Sendable {
    /// Where the spare is, for messages and status: a URI with no secrets in it, or a path.
    var name: String { get }

    /// The most frames one epoch may hold (`remote.staging` over the frame size): a larger epoch
    /// cannot be committed atomically.
    var epochCapacity: Int { get }

    /// Connects to the spare again after it was lost (the link back, the server restarted) and
    /// checks that it is still this primary's; nothing is written. A sync follows. Returns
    /// whether the spare still holds what this primary last committed to it (the same sync):
    /// only then may that sync send just what changed; a spare whose contents were replaced or
    /// given back needs a sync from scratch.
    func reconnect() throws(SpareStoreError) -> Bool

    /// Starts a sync from scratch: from now on the spare holds no image to take over until the
    /// first epoch of this sync commits.
    func beginSync() throws(SpareStoreError)

    /// Writes the contiguous `frames` of `memory` in place (the full copy).
    func write(frames: Range<Int>, of memory: UnsafeRawPointer) throws(SpareStoreError)

    /// Writes the listed frames of `memory` in place (a pass of the sync).
    func write(frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(SpareStoreError)

    /// Makes every write so far stable on the spare.
    func flush() throws(SpareStoreError)

    /// Commits epoch `epoch` atomically: the frames `frameList` (at most ``epochCapacity``), whose
    /// contents are in `staged` one after another, in list order. When it returns, whatever later
    /// happens to this host, the spare can be brought to exactly this epoch.
    func commit(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)

    /// Commits a clean stop's last epoch as ``commit(epoch:frameList:staged:)`` does, when nothing
    /// is committed after it: a store that keeps epochs in a journal may leave its frames there
    /// rather than also put them in the image, since whoever takes the spare over brings it to its
    /// last committed epoch first. The default commits it as any other.
    func commitLast(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)

    /// Says, from any thread, that the next commit after the one in flight (if any) is a clean
    /// stop's last epoch (``commitLast(epoch:frameList:staged:)``): a store that keeps epochs in a
    /// journal may then leave the frames of the commit in flight there as well, rather than
    /// finish putting them in the image, since whoever takes the spare over replays both. The
    /// default does nothing.
    func lastEpochFollows()

    /// Reads the contiguous `frames` of the spare's image into `buffer` (one frame after another):
    /// the read-back that checks a committed epoch. Returns the newest epoch whose frames were all
    /// in the image when the read began (the last committed one, unless the spare host puts the
    /// epochs in place on its own and is a little behind): a frame of a later epoch may read older.
    func read(frames: Range<Int>, into buffer: UnsafeMutableRawPointer) throws(SpareStoreError) -> UInt64
}

extension SpareStore {
    /// Commits the last epoch as any other.
    public func commitLast(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        try commit(epoch: epoch, frameList: frameList, staged: staged)
    }

    /// Does nothing: every commit puts its frames in place.
    public func lastEpochFollows() {}
}
