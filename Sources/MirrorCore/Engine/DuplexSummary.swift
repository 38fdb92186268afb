/// The record of one duplex, as printed by `mirrord --once --json` and logged at the end.
///
/// Key names are part of the interface: tools and the journal fields use the same names.
public struct DuplexSummary: Sendable, Encodable, Hashable {
    /// The full copy of every frame, active → spare.
    public struct FullCopy: Sendable, Encodable, Hashable {
        /// How long the full copy took.
        public var durationMicroseconds: UInt64
        /// How many bytes it copied.
        public var bytes: Int

        /// Creates a record.
        public init(durationMicroseconds: UInt64, bytes: Int) {
            self.durationMicroseconds = durationMicroseconds
            self.bytes = bytes
        }

        /// The copy bandwidth in GB/s (10⁹ bytes a second).
        public var gigabytesPerSecond: Double {
            durationMicroseconds == 0 ? 0 : Double(bytes) / Double(durationMicroseconds) / 1_000
        }

        enum CodingKeys: String, CodingKey {
            case durationMicroseconds = "duration_us"
            case bytes
        }
    }

    /// One harvest-and-copy pass.
    public struct Pass: Sendable, Encodable, Hashable {
        /// The pass number, from 1.
        public var pass: Int
        /// Frames found dirty by this pass's harvest.
        public var dirtyFrames: Int
        /// Frames copied to the spare by this pass.
        public var copiedFrames: Int
        /// How long the harvest and the copy took.
        public var durationMicroseconds: UInt64
        /// Frames dirtied per second since the previous harvest (or since tracking began).
        public var dirtyRateFramesPerSecond: Double
        /// Frames still marked dirty when the pass ended (the running count).
        public var remainingDirtyFrames: Int
        /// The blackout predicted for the remaining frames, when the engine's costs were measured.
        public var predictedBlackoutMicroseconds: UInt64?
        /// The highest throttle in force on a CPU during the pass, in percent.
        public var throttlePercent: Double
        /// The throttle in force on each CPU during the pass, in percent.
        public var cpuThrottlePercent: [Double]

        /// Creates a record.
        public init(
            pass: Int, dirtyFrames: Int, copiedFrames: Int, durationMicroseconds: UInt64,
            dirtyRateFramesPerSecond: Double, remainingDirtyFrames: Int, predictedBlackoutMicroseconds: UInt64? = nil,
            cpuThrottlePercent: [Double] = []
        ) {
            self.pass = pass
            self.dirtyFrames = dirtyFrames
            self.copiedFrames = copiedFrames
            self.durationMicroseconds = durationMicroseconds
            self.dirtyRateFramesPerSecond = dirtyRateFramesPerSecond
            self.remainingDirtyFrames = remainingDirtyFrames
            self.predictedBlackoutMicroseconds = predictedBlackoutMicroseconds
            self.cpuThrottlePercent = cpuThrottlePercent
            self.throttlePercent = cpuThrottlePercent.max() ?? 0
        }

        enum CodingKeys: String, CodingKey {
            case pass
            case dirtyFrames = "dirty_frames"
            case copiedFrames = "copied_frames"
            case durationMicroseconds = "duration_us"
            case dirtyRateFramesPerSecond = "dirty_rate_fps"
            case remainingDirtyFrames = "remaining_dirty_frames"
            case predictedBlackoutMicroseconds = "predicted_blackout_us"
            case throttlePercent = "throttle_percent"
            case cpuThrottlePercent = "cpu_throttle_percent"
        }
    }

    /// The blackout: CPUs and DMA stopped, final copy (and, with `duplex.verify_in_blackout`, a
    /// comparison of the final frames), lockstep on.
    public struct Blackout: Sendable, Encodable, Hashable {
        /// From the stop request to the resume: how long nothing ran.
        public var durationMicroseconds: UInt64
        /// How long it took to stop every CPU and the DMA engine.
        public var stopMicroseconds: UInt64
        /// Frames still dirty at the stop, copied in the blackout.
        public var finalFrames: Int
        /// How long the final copy took.
        public var finalCopyMicroseconds: UInt64
        /// How long the comparison of the final frames took inside the blackout (0 unless
        /// `duplex.verify_in_blackout`).
        public var verifyMicroseconds: UInt64
        /// The blackout the engine predicted when the passes ended, when its costs were measured.
        public var predictedMicroseconds: UInt64?
        /// How long the final harvest took (the last dirty frames listed and cleared).
        public var finalHarvestMicroseconds: UInt64 = 0
        /// How long switching lockstep on and lifting the throttles took, up to the resume.
        public var resumeMicroseconds: UInt64 = 0
        /// How much of the blackout the engine's thread did not run, less the whole stop (which may
        /// sleep while the writers reach their checkpoints), and how long its copies waited for
        /// the hardware's copying threads while those did not run: cores taken by the host (steal
        /// time) or given to another thread. Nothing in mirrord can win this back; it is what a
        /// blackout over the target on a busy host is made of.
        public var offCPUMicroseconds: UInt64 = 0

        /// Whether the blackout exceeded `targetMicroseconds` (when set) by no more than its time
        /// off the CPU: without what the host took, it would have been within the target.
        public func overTargetOffCPU(targetMicroseconds: UInt64) -> Bool {
            targetMicroseconds > 0 && durationMicroseconds > targetMicroseconds
                && offCPUMicroseconds >= durationMicroseconds - targetMicroseconds
        }

        /// Creates a record.
        public init(
            durationMicroseconds: UInt64, stopMicroseconds: UInt64, finalFrames: Int,
            finalCopyMicroseconds: UInt64, verifyMicroseconds: UInt64, predictedMicroseconds: UInt64? = nil
        ) {
            self.durationMicroseconds = durationMicroseconds
            self.stopMicroseconds = stopMicroseconds
            self.finalFrames = finalFrames
            self.finalCopyMicroseconds = finalCopyMicroseconds
            self.verifyMicroseconds = verifyMicroseconds
            self.predictedMicroseconds = predictedMicroseconds
        }

        enum CodingKeys: String, CodingKey {
            case durationMicroseconds = "duration_us"
            case stopMicroseconds = "stop_us"
            case finalFrames = "final_frames"
            case finalCopyMicroseconds = "final_copy_us"
            case verifyMicroseconds = "verify_us"
            case predictedMicroseconds = "predicted_us"
            case finalHarvestMicroseconds = "final_harvest_us"
            case resumeMicroseconds = "resume_us"
            case offCPUMicroseconds = "off_cpu_us"
        }
    }

    /// How the engine kept the blackout bounded: the target, the policy, and what it cost the
    /// workload.
    public struct Convergence: Sendable, Encodable, Hashable {
        /// `duplex.convergence`.
        public var policy: ConvergencePolicy
        /// `duplex.blackout_target` in microseconds (0: off).
        public var targetMicroseconds: UInt64
        /// `duplex.throttle_max`, in percent.
        public var throttleLimitPercent: Double
        /// The highest throttle any CPU had, in percent.
        public var maximumThrottlePercent: Double = 0
        /// The highest throttle each CPU had, in percent: under dirty-limit, 0 for the CPUs that
        /// write little.
        public var cpuMaximumThrottlePercent: [Double] = []
        /// How long some CPU was throttled.
        public var throttledMicroseconds: UInt64 = 0
        /// Stores a second of the workload just before tracking started (nil: not measured).
        public var baselineStoresPerSecond: Double?
        /// Stores a second from the start of tracking to the end of the blackout.
        public var duplexStoresPerSecond: Double?
        /// `duplexStoresPerSecond ÷ baselineStoresPerSecond`: 1 when the duplex took nothing from
        /// the workload.
        public var workloadSlowdown: Double?
        /// The same per CPU.
        public var cpuSlowdown: [Double] = []
        /// The workload's slowdown from the end of the full copy to the end of the blackout: the
        /// passes, where the policies act (the full copy costs every policy the same). Nil when
        /// that window is shorter than the baseline's (`DuplexPolicy.baselineNanoseconds`).
        public var passesSlowdown: Double?
        /// The same per CPU: a CPU that dirty-limit spares stays near 1.
        public var passesCPUSlowdown: [Double] = []
        /// Whether stopping the CPUs for the blackout taken alone took longer than the target (a
        /// descheduled CPU thread on a busy host), so that no amount of throttling could meet it.
        /// Slow stops of probes that were not taken do not count.
        public var stopExceedsTarget = false
        /// Whether `duplex.max_duration` passed before the passes converged.
        public var deadlineReached = false

        /// A record for `policy` and `target`, before anything is measured.
        public init(policy: DuplexPolicy) {
            self.policy = policy.convergence
            targetMicroseconds = policy.blackoutTargetNanoseconds / 1_000
            throttleLimitPercent = policy.throttleMaximum * 100
        }

        enum CodingKeys: String, CodingKey {
            case policy
            case targetMicroseconds = "target_us"
            case throttleLimitPercent = "throttle_max_percent"
            case maximumThrottlePercent = "max_throttle_percent"
            case cpuMaximumThrottlePercent = "cpu_max_throttle_percent"
            case throttledMicroseconds = "throttled_us"
            case baselineStoresPerSecond = "baseline_stores_per_s"
            case duplexStoresPerSecond = "duplex_stores_per_s"
            case workloadSlowdown = "workload_slowdown"
            case cpuSlowdown = "cpu_slowdown"
            case passesSlowdown = "passes_slowdown"
            case passesCPUSlowdown = "passes_cpu_slowdown"
            case stopExceedsTarget = "stop_exceeds_target"
            case deadlineReached = "deadline_reached"
        }
    }

    /// The comparison of every frame of the spare with the active module.
    public struct Verify: Sendable, Encodable, Hashable {
        /// Frames compared (every frame of the module when the verify ran to its end).
        public var framesChecked: Int
        /// Frames that differ, confirmed with the CPUs stopped.
        public var mismatches: Int
        /// The first differing frame numbers, ascending (at most ``DuplexEngine/reportedMismatches``).
        public var firstMismatches: [Int]
        /// Frames that differed while running in lockstep and were compared again (a store in
        /// flight between the two modules makes a frame differ for a moment).
        public var candidates: Int
        /// How long the verify took, the confirming blackout included.
        public var durationMicroseconds: UInt64
        /// How long the short blackout that confirmed the candidates lasted (0 when there were none).
        public var confirmMicroseconds: UInt64

        /// Creates a record.
        public init(
            framesChecked: Int = 0, mismatches: Int = 0, firstMismatches: [Int] = [], candidates: Int = 0,
            durationMicroseconds: UInt64 = 0, confirmMicroseconds: UInt64 = 0
        ) {
            self.framesChecked = framesChecked
            self.mismatches = mismatches
            self.firstMismatches = firstMismatches
            self.candidates = candidates
            self.durationMicroseconds = durationMicroseconds
            self.confirmMicroseconds = confirmMicroseconds
        }

        enum CodingKeys: String, CodingKey {
            case framesChecked = "frames_checked"
            case mismatches
            case firstMismatches = "first_mismatches"
            case candidates
            case durationMicroseconds = "duration_us"
            case confirmMicroseconds = "confirm_us"
        }
    }

    /// How the duplex ended; encoded as the keys `result` (`duplexed` or `failed`) and `reason`
    /// (why the passes ended, `threshold`, `max_passes`, `stalled`, when duplexed; why the duplex
    /// failed otherwise, `verify_mismatch`, `stopped`, `hardware_error`).
    public var outcome: DuplexOutcome
    /// One sentence for people.
    public var message: String
    /// The state the duplex ended in: `duplexed` or `failed`.
    public var finalState: DuplexState
    /// The state the duplex was in when it failed.
    public var failedIn: DuplexState?
    /// The backend that ran the duplex.
    public var backend: String
    /// The size of each module in bytes.
    public var memoryBytes: Int
    /// The frame size in bytes.
    public var frameSize: Int
    /// The number of frames in each module.
    public var frames: Int
    /// `duplex.threshold_frames` in force.
    public var thresholdFrames: Int
    /// Why the passes ended, when they did.
    public var passEndReason: PassEndReason?
    /// The full copy, when it ran.
    public var fullCopy: FullCopy?
    /// Every pass, in order.
    public var passes: [Pass]
    /// The blackout, when it ran.
    public var blackout: Blackout?
    /// The verify, when it ran.
    public var verify: Verify?
    /// With a spare on another host: its first epoch, committed in place of the verify.
    public var firstEpoch: EpochReport?
    /// The spare on another host (its URI, no secrets), or nil for the machine's own spare module.
    public var spareName: String?
    /// An incremental resynchronisation of the spare on another host, in place of the full copy.
    public var resync: Resync?

    /// What an incremental resynchronisation sent before its passes.
    public struct Resync: Sendable, Encodable, Hashable {
        /// The frames of the epochs never committed, sent again.
        public var resentFrames: Int
        /// How long that took.
        public var durationMicroseconds: UInt64

        /// Creates a record.
        public init(resentFrames: Int, durationMicroseconds: UInt64) {
            self.resentFrames = resentFrames
            self.durationMicroseconds = durationMicroseconds
        }

        enum CodingKeys: String, CodingKey {
            case resentFrames = "resent_frames"
            case durationMicroseconds = "duration_us"
        }
    }
    /// The convergence control of this duplex.
    public var convergence: Convergence
    /// From the start of the duplex (tracking switched on) to the end of the verify.
    public var totalMicroseconds: UInt64
    /// The backend's own counts since the machine started (for the emulated MMU: maps, forks,
    /// splits, …; the stores of the CPUs).
    public var hardwareStatistics: [String: Int]

    /// Whether the spare was proven equal and left in lockstep.
    public var isDuplexed: Bool { outcome.isDuplexed }

    /// Creates an empty summary for a duplex about to start.
    public init(backend: String, geometry: MemoryGeometry, thresholdFrames: Int, policy: DuplexPolicy = DuplexPolicy())
    {
        self.outcome = .failed(.notStarted)
        self.message = "the duplex has not run"
        self.finalState = .idle
        self.failedIn = nil
        self.backend = backend
        self.memoryBytes = geometry.byteCount
        self.frameSize = geometry.frameSize
        self.frames = geometry.frameCount
        self.thresholdFrames = thresholdFrames
        self.passEndReason = nil
        self.fullCopy = nil
        self.passes = []
        self.blackout = nil
        self.verify = nil
        self.convergence = Convergence(policy: policy)
        self.totalMicroseconds = 0
        self.hardwareStatistics = [:]
    }

    enum CodingKeys: String, CodingKey {
        case result, reason, message, backend, frames, passes, blackout, verify, convergence
        case finalState = "state"
        case failedIn = "failed_in"
        case memoryBytes = "memory_bytes"
        case frameSize = "frame_size"
        case thresholdFrames = "threshold_frames"
        case passEndReason = "pass_end_reason"
        case fullCopy = "full_copy"
        case totalMicroseconds = "total_us"
        case hardwareStatistics = "hardware_statistics"
        case firstEpoch = "first_epoch"
        case spareName = "spare"
        case resync
    }

    /// Encodes the documented keys; the outcome becomes `result` and `reason`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(outcome.result, forKey: .result)
        try c.encode(outcome.reason, forKey: .reason)
        try c.encode(message, forKey: .message)
        try c.encode(finalState, forKey: .finalState)
        try c.encodeIfPresent(failedIn, forKey: .failedIn)
        try c.encode(backend, forKey: .backend)
        try c.encode(memoryBytes, forKey: .memoryBytes)
        try c.encode(frameSize, forKey: .frameSize)
        try c.encode(frames, forKey: .frames)
        try c.encode(thresholdFrames, forKey: .thresholdFrames)
        try c.encodeIfPresent(passEndReason, forKey: .passEndReason)
        try c.encodeIfPresent(fullCopy, forKey: .fullCopy)
        try c.encode(passes, forKey: .passes)
        try c.encodeIfPresent(blackout, forKey: .blackout)
        try c.encodeIfPresent(verify, forKey: .verify)
        try c.encodeIfPresent(firstEpoch, forKey: .firstEpoch)
        try c.encodeIfPresent(spareName, forKey: .spareName)
        try c.encodeIfPresent(resync, forKey: .resync)
        try c.encode(convergence, forKey: .convergence)
        try c.encode(totalMicroseconds, forKey: .totalMicroseconds)
        try c.encode(hardwareStatistics, forKey: .hardwareStatistics)
    }
}
