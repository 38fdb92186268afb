/// The blackout the engine expects for a set of dirty frames, from its own costs measured in this
/// duplex.
///
/// A blackout is the stop of every writer, the harvest of every frame, the copy of the dirty ones,
/// the resume. All of it is measured by *probes*: short blackouts taken after a pass that leaves
/// few enough dirty frames, which list the dirty frames without clearing anything, copy a sample
/// of them (they stay dirty and are copied again later) and resume. The sample is sixteen pieces of
/// the list spread evenly over it, so that it has the list's own mix of scattered frames and runs of
/// adjacent ones, and its frames were just written by the CPUs, as the final ones will be; it is
/// copied on one thread, and a list long enough to be split between two runs ``splitSpeedup``
/// times faster. Until a probe has measured, the passes' own copies serve.
public struct BlackoutModel: Sendable, Hashable {
    /// Frames a list must have before its copy is split between two threads (as the emulated
    /// machine's copy path does).
    public static let splitFrames = 512
    /// How much faster a split copy runs than one thread (two cores, the CPUs stopped); checked
    /// against the blackouts `mirrord bench --only convergence` measures.
    public static let splitSpeedup = 1.8
    /// Frames a probe copies as its sample: ``samplePieces`` pieces of the list, spread evenly.
    public static let sampleFrames = 256
    /// The pieces of the dirty list a sample is made of.
    public static let samplePieces = 16
    /// Fewer sample frames than this say more about the call than about a frame.
    public static let minimumSample = 32

    /// The last probe's stop, in nanoseconds.
    public private(set) var stopNanoseconds: UInt64 = 0
    /// The last probe's harvest of every frame, in nanoseconds.
    public private(set) var harvestNanoseconds: UInt64 = 0
    /// The resume of the last final blackout, in nanoseconds (the lockstep switch; 0 until one).
    public private(set) var resumeNanoseconds: UInt64 = 0
    /// Nanoseconds a frame of the last probe's sample took to copy, on one thread (0: none yet).
    public private(set) var sampleNanosecondsPerFrame: Double = 0
    /// Nanoseconds per frame of the last pass copy (fallback before a probe's sample).
    public private(set) var passNanosecondsPerFrame: Double = 0
    private var passCopySplit = false

    /// A model with nothing measured yet.
    public init() {}

    /// Whether a stop, a harvest and a copy have been measured, so that predictions mean something.
    public var isCalibrated: Bool {
        stopNanoseconds + harvestNanoseconds > 0 && (sampleNanosecondsPerFrame > 0 || passNanosecondsPerFrame > 0)
    }

    /// Records a pass's copy of `frames` frames in `nanoseconds`; copies of a handful of frames
    /// say more about the call than about a frame and are not taken.
    public mutating func recordCopy(frames: Int, nanoseconds: UInt64) {
        guard frames >= 64 else { return }
        passNanosecondsPerFrame = Double(nanoseconds) / Double(frames)
        passCopySplit = frames >= Self.splitFrames
    }

    /// Records a blackout's stop and its look at the dirty set (a harvest of every frame).
    public mutating func recordLook(stop: UInt64, harvest: UInt64) {
        stopNanoseconds = stop
        harvestNanoseconds = harvest
    }

    /// Records a probe's copy of a sample of `sampled` frames in `nanoseconds`.
    public mutating func recordSample(frames sampled: Int, nanoseconds: UInt64) {
        if sampled >= Self.minimumSample { sampleNanosecondsPerFrame = Double(nanoseconds) / Double(sampled) }
    }

    /// Records how long a final blackout's lockstep switch took.
    public mutating func recordResume(_ nanoseconds: UInt64) {
        resumeNanoseconds = nanoseconds
    }

    /// Nanoseconds to copy `frames` frames like those of the last sample.
    public func copyNanoseconds(frames: Int) -> Double {
        guard frames > 0 else { return 0 }
        let split = frames >= Self.splitFrames
        if sampleNanosecondsPerFrame > 0 {
            let oneThread = sampleNanosecondsPerFrame * Double(frames)
            return split ? oneThread / Self.splitSpeedup : oneThread
        }
        // Before a probe: the passes' copy, scaled for a split it did not have (or did).
        if split == passCopySplit { return passNanosecondsPerFrame * Double(frames) }
        let perFrame = split ? passNanosecondsPerFrame / Self.splitSpeedup : passNanosecondsPerFrame * Self.splitSpeedup
        return perFrame * Double(frames)
    }

    /// Nanoseconds a frame costs in a copy of `frames` frames.
    public func copyNanosecondsPerFrame(frames: Int) -> Double {
        frames > 0 ? copyNanoseconds(frames: frames) / Double(frames) : 0
    }

    /// The fixed part of a blackout: stop, final harvest, resume.
    public var overheadNanoseconds: UInt64 { stopNanoseconds + harvestNanoseconds + resumeNanoseconds }

    /// The part of a blackout after the final harvest: the copy of `frames` frames and the resume.
    public func predictCopyAndResume(frames: Int) -> UInt64 {
        resumeNanoseconds + UInt64(copyNanoseconds(frames: frames).rounded())
    }

    /// The blackout predicted for `frames` dirty frames, in nanoseconds.
    public func predict(frames: Int) -> UInt64 {
        stopNanoseconds + harvestNanoseconds + predictCopyAndResume(frames: frames)
    }

    /// The most frames whose blackout is predicted within `target` nanoseconds (0 when
    /// the fixed part alone exceeds it).
    public func frameBudget(target: UInt64) -> Int {
        guard target > overheadNanoseconds, isCalibrated else { return 0 }
        let room = Double(target - overheadNanoseconds)
        let unsplit = min(Self.splitFrames - 1, Int(room / copyNanosecondsPerFrame(frames: 1)))
        let split = Int(room / copyNanosecondsPerFrame(frames: Self.splitFrames))
        return split >= Self.splitFrames ? max(unsplit, split) : unsplit
    }
}
