/// What one committed epoch did: how long the machine paused for it, how long its commit took
/// over the link, and how far the spare was behind when it committed.
public struct EpochReport: Sendable, Encodable, Hashable {
    /// The epoch's number: 1 is the first, which ends the sync.
    public var epoch: UInt64
    /// Frames dirtied in the epoch, staged in its pause and committed.
    public var frames: Int
    /// How long the CPUs and the DMA engine were stopped for it: the stop, the harvest, the copy
    /// of its frames into the staging area, the resume.
    public var pauseMicroseconds: UInt64
    /// How long the stop alone took.
    public var stopMicroseconds: UInt64
    /// How long the copy into the staging area took.
    public var stageMicroseconds: UInt64
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
        framesReadBack: Int
    ) {
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
