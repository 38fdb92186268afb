/// What one committed epoch did: how long the machine paused for it, how long its commit took
/// over the link, and how far the spare was behind when it committed.
public struct EpochReport: Sendable, Encodable, Hashable {
    /// The epoch's number: 1 is the first, which ends the sync.
    public var epoch: UInt64
    /// Frames dirtied in the epoch, staged and committed.
    public var frames: Int
    /// How long the CPUs and the DMA engine were stopped for it: the stop, the harvest, and either
    /// the marking of its frames as pending (copy-on-write staging: the copy follows the resume)
    /// or, on machines without it and in a clean stop's last epoch, the copy of its frames into
    /// the staging area; then the resume.
    public var pauseMicroseconds: UInt64
    /// How long the stop alone took.
    public var stopMicroseconds: UInt64
    /// How long the copy into the staging area took: after the resume, while the writers run
    /// (copy-on-write), or inside the pause (see ``framesCopiedInPause``).
    public var stageMicroseconds: UInt64
    /// Frames copied into the staging area inside the pause: 0 with copy-on-write staging, all of
    /// them without it (and in a clean stop's last epoch, or the sync's first).
    public var framesCopiedInPause: Int
    /// Frames a writer copied into the staging area itself after the resume, before its store to
    /// a frame still pending (copy-on-write staging).
    public var framesCopiedByWriters: Int
    /// How long its commit on the spare took (journal, flush, record, in place).
    public var commitMicroseconds: UInt64
    /// From its pause to the end of its commit: how old the spare's state was when it committed.
    public var lagMicroseconds: UInt64
    /// Epochs paused but not yet committed when it committed (0: the spare is current up to the
    /// last pause).
    public var epochsBehind: Int
    /// The link's speed in this commit: the epoch's bytes over its commit time.
    public var linkBytesPerSecond: Double
    /// Frames read back from the spare after the commit and found equal to memory.
    public var framesReadBack: Int

    /// Creates a report.
    public init(
        epoch: UInt64, frames: Int, pauseMicroseconds: UInt64, stopMicroseconds: UInt64, stageMicroseconds: UInt64,
        commitMicroseconds: UInt64, lagMicroseconds: UInt64, epochsBehind: Int, linkBytesPerSecond: Double,
        framesReadBack: Int, framesCopiedInPause: Int = 0, framesCopiedByWriters: Int = 0
    ) {
        self.framesCopiedInPause = framesCopiedInPause
        self.framesCopiedByWriters = framesCopiedByWriters
        self.epoch = epoch
        self.frames = frames
        self.pauseMicroseconds = pauseMicroseconds
        self.stopMicroseconds = stopMicroseconds
        self.stageMicroseconds = stageMicroseconds
        self.commitMicroseconds = commitMicroseconds
        self.lagMicroseconds = lagMicroseconds
        self.epochsBehind = epochsBehind
        self.linkBytesPerSecond = linkBytesPerSecond
        self.framesReadBack = framesReadBack
    }
}
