/// The tunables of the duplex loop: when the passes end, how the CPUs are slowed when they dirty
/// memory faster than it is copied, and how the DMA engine is treated.
public struct DuplexPolicy: Sendable, Hashable {
    /// End the passes once no more than this many frames are dirty (`duplex.threshold_frames`).
    public var thresholdFrames: Int
    /// End the passes after this many passes at most (`duplex.max_passes`).
    public var maxPasses: Int
    /// End the passes when a pass shrinks the dirty set by less than this fraction of the pass
    /// before it (`duplex.min_progress`); 0 turns the stall rule off. With convergence control the
    /// stall first raises the throttle, and ends the passes only at the maximum throttle.
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
    /// End the passes once the blackout predicted for the dirty frames is at most this long, in
    /// nanoseconds (`duplex.blackout_target`); 0 turns the target off.
    public var blackoutTargetNanoseconds: UInt64
    /// How the CPUs are slowed when the passes do not converge (`duplex.convergence`).
    public var convergence: ConvergencePolicy
    /// The first throttle step, as a fraction of the CPU's time (`duplex.throttle_initial`).
    public var throttleInitial: Double
    /// The step added per pass that does not converge (`duplex.throttle_increment`).
    public var throttleIncrement: Double
    /// The most a CPU is slowed (`duplex.throttle_max`).
    public var throttleMaximum: Double
    /// After this long (nanoseconds, from the start of tracking) the maximum throttle applies and
    /// the blackout is taken at the next pass (`duplex.max_duration`); 0: no deadline.
    public var maxDurationNanoseconds: UInt64
    /// How long the workload's store rate is sampled before tracking starts, as the base of the
    /// workload's slowdown (nanoseconds; 0: not measured).
    public var baselineNanoseconds: UInt64

    /// Creates a policy; the defaults are those of `config/mirrord.conf`.
    public init(
        thresholdFrames: Int = 1024,
        maxPasses: Int = 30,
        minProgress: Double = 0.05,
        dmaDualWrite: Bool = true,
        harvestBatchFrames: Int = 65_536,
        verifyFinalFramesInBlackout: Bool = false,
        blackoutTargetNanoseconds: UInt64 = 1_000_000,
        convergence: ConvergencePolicy = .dirtyLimit,
        throttleInitial: Double = 0.20,
        throttleIncrement: Double = 0.10,
        throttleMaximum: Double = 0.99,
        maxDurationNanoseconds: UInt64 = 60_000_000_000,
        baselineNanoseconds: UInt64 = 50_000_000
    ) {
        self.thresholdFrames = thresholdFrames
        self.maxPasses = maxPasses
        self.minProgress = minProgress
        self.dmaDualWrite = dmaDualWrite
        self.harvestBatchFrames = harvestBatchFrames
        self.verifyFinalFramesInBlackout = verifyFinalFramesInBlackout
        self.blackoutTargetNanoseconds = blackoutTargetNanoseconds
        self.convergence = convergence
        self.throttleInitial = throttleInitial
        self.throttleIncrement = throttleIncrement
        self.throttleMaximum = throttleMaximum
        self.maxDurationNanoseconds = maxDurationNanoseconds
        self.baselineNanoseconds = baselineNanoseconds
    }
}
