/// The tunables of the duplex loop: when the passes end and how the DMA engine is treated.
public struct DuplexPolicy: Sendable, Hashable {
    /// End the passes once no more than this many frames are dirty (`duplex.threshold_frames`).
    public var thresholdFrames: Int
    /// End the passes after this many passes at most (`duplex.max_passes`).
    public var maxPasses: Int
    /// End the passes when a pass shrinks the dirty set by less than this fraction of the pass
    /// before it (`duplex.min_progress`); 0 turns the stall rule off.
    public var minProgress: Double
    /// Send DMA writes to both modules during the duplex (`dma.dual_write`). Off only as a negative
    /// control: DMA sets no dirty bit, so its writes are then lost to the spare.
    public var dmaDualWrite: Bool
    /// Frames harvested per call: the capacity of the engine's output vector.
    public var harvestBatchFrames: Int
    /// Compare the final frames inside the blackout as well (`duplex.verify_in_blackout`), before
    /// lockstep starts; they are compared again with every other frame after it. Either way
    /// nothing is called duplexed before every frame compared equal; inside, the blackout about
    /// doubles.
    public var verifyFinalFramesInBlackout: Bool

    /// Creates a policy; the defaults are those of `config/mirrord.conf`.
    public init(
        thresholdFrames: Int = 1024,
        maxPasses: Int = 30,
        minProgress: Double = 0.05,
        dmaDualWrite: Bool = true,
        harvestBatchFrames: Int = 65_536,
        verifyFinalFramesInBlackout: Bool = false
    ) {
        self.verifyFinalFramesInBlackout = verifyFinalFramesInBlackout
        self.thresholdFrames = thresholdFrames
        self.maxPasses = maxPasses
        self.minProgress = minProgress
        self.dmaDualWrite = dmaDualWrite
        self.harvestBatchFrames = harvestBatchFrames
    }
}
