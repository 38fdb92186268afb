/// The blackout the engine expects for a set of dirty frames, from its own costs measured in this
/// duplex.
///
/// A blackout is the stop of every writer, the harvest of every frame, the copy of the dirty ones,
/// the resume. All of it is measured in *looks*: blackouts taken after a pass that leaves few
/// enough dirty frames, which list the dirty frames without clearing anything and copy a *sample*
/// of them: sixteen pieces of the list spread evenly over it, so that it has the list's own mix of
/// scattered frames and runs of adjacent ones, just written by the CPUs as the final ones will be.
/// Where the list allows (see ``sampling(dirty:ending:limit:)``), the sample is copied before the
/// decision, so that the copy of the rest is predicted from a copy made moments earlier in the same
/// blackout, and counts as part of the final copy if the blackout goes on to it; otherwise it is
/// copied only when the look ends as a *probe* (the writers resume; the sampled frames stay dirty).
///
/// A copy of ``splitFrames`` or more is split between two threads, which saves more on a long
/// list than on a short one and depends on how soon the second thread starts: split and
/// one-thread copies are two kinds, each predicted from the last sample of its own kind, or
/// derived from the other's with ``splitSpeedup`` until it has one. Until a sample, the passes'
/// own copies serve.
public struct BlackoutModel: Sendable, Hashable {
    /// Frames a list must have before its copy is split between two threads (as the emulated
    /// machine's copy path does).
    public static let splitFrames = 256
    /// How much faster a split copy of a long list runs than one thread (two cores, the CPUs
    /// stopped), for a kind of copy not measured yet; checked against the blackouts `mirrord-bench
    /// --only convergence` measures.
    public static let splitSpeedup = 1.8
    /// Frames of the sample of a list of twice as many or more (split, as the rest of the list
    /// is), or more in a blackout that goes on whatever the prediction
    /// (``sampling(dirty:ending:limit:)``). A shorter list's sample is half of it.
    public static let longSampleFrames = 2 * splitFrames
    /// The pieces of the dirty list a sample is made of.
    public static let samplePieces = 16
    /// Fewer sample frames than this say more about the call than about a frame.
    public static let minimumSample = 32

    /// The last look's stop, in nanoseconds.
    public private(set) var stopNanoseconds: UInt64 = 0
    /// The last look's harvest of every frame, in nanoseconds.
    public private(set) var harvestNanoseconds: UInt64 = 0
    /// The resume of the last final blackout, in nanoseconds (the lockstep switch; 0 until one).
    public private(set) var resumeNanoseconds: UInt64 = 0
    /// Nanoseconds a frame of the last one-thread sample took to copy (0: none yet).
    public private(set) var sampleNanosecondsPerFrame: Double = 0
    /// Nanoseconds a frame of the last split sample took to copy, both threads together (0: none
    /// yet).
    public private(set) var splitSampleNanosecondsPerFrame: Double = 0
    /// Nanoseconds per frame of the last pass copy (fallback before a sample).
    public private(set) var passNanosecondsPerFrame: Double = 0
    private var passCopySplit = false

    /// A model with nothing measured yet.
    public init() {}

    /// Whether a stop, a harvest and a copy have been measured, so that predictions mean something.
    public var isCalibrated: Bool {
        stopNanoseconds + harvestNanoseconds > 0
            && (sampleNanosecondsPerFrame > 0 || splitSampleNanosecondsPerFrame > 0 || passNanosecondsPerFrame > 0)
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

    /// How a look samples a list of `dirty` frames: how many frames, and whether before the
    /// decision. A list of 64 to 1,023 frames is sampled first with half of it, so that the sample
    /// and the rest are copies of one kind and one size (both split from 512 frames, both on one
    /// thread below, but for a list of 511, whose rest of 256 splits); a list of 1,024 or more
    /// with ``longSampleFrames``, split, as the rest is. A shorter list is copied whole before
    /// the decision: it costs a few tens of microseconds, which a per-frame figure taken from
    /// other lists predicts no better than the host's noise (such lists are often frames the CPUs
    /// keep rewriting, still in cache), and the blackout is then known but for the resume. Only
    /// those of ``minimumSample`` frames or more are recorded as samples.
    ///
    /// When the blackout goes on to the final copy whatever the prediction (`ending`), a long
    /// list's sample costs nothing more than its own copy, and is taken longer: an eighth of the
    /// list, up to `limit` frames, so that what a split copy pays once (the second thread's start)
    /// weighs in the sample as it will in the list.
    public static func sampling(dirty: Int, ending: Bool = false, limit: Int = longSampleFrames) -> (
        frames: Int, beforeDecision: Bool
    ) {
        switch dirty {
        case 0: (0, false)
        case ..<(2 * minimumSample): (dirty, true)
        case ..<(2 * longSampleFrames): (dirty / 2, true)
        default: (ending ? max(longSampleFrames, min(dirty / 8, limit)) : longSampleFrames, true)
        }
    }

    /// Puts a sample of `frames` frames of `list` into `output`: ``samplePieces`` pieces of the
    /// list spread evenly over it, with its runs and gaps, in ascending order (the whole list when
    /// it is no longer; at most `output.count` frames). Exactly that many: a sample short of the
    /// size ``sampling(dirty:ending:limit:)`` chose could fall under ``splitFrames`` while the rest
    /// of the list does not. Returns the frames taken.
    package static func takeSample(
        of list: UnsafeBufferPointer<UInt32>, frames: Int, into output: UnsafeMutableBufferPointer<UInt32>
    ) -> Int {
        let sampled = min(frames, list.count, output.count)
        guard sampled < list.count else {
            for i in 0..<sampled { output[i] = list[i] }
            return sampled
        }
        // The remainder goes one frame each to the first pieces; the pieces start where the
        // longest of them still ends within the list.
        let longest = (sampled + samplePieces - 1) / samplePieces
        var taken = 0
        for piece in 0..<samplePieces {
            let length = sampled / samplePieces + (piece < sampled % samplePieces ? 1 : 0)
            let from = piece * (list.count - longest) / (samplePieces - 1)
            for i in from..<(from + length) where taken == 0 || output[taken - 1] < list[i] {
                output[taken] = list[i]
                taken += 1
            }
        }
        return taken
    }

    /// Records the copy of a sample of `sampled` frames in `nanoseconds` (split between two
    /// threads when it has ``splitFrames`` or more): the time it would have taken with its
    /// threads on their CPUs throughout, so that a stretch the host or another thread took from
    /// the sample is not charged to every frame of the rest.
    public mutating func recordSample(frames sampled: Int, nanoseconds: UInt64) {
        guard sampled >= Self.minimumSample else { return }
        let perFrame = Double(nanoseconds) / Double(sampled)
        if sampled >= Self.splitFrames {
            splitSampleNanosecondsPerFrame = perFrame
        } else {
            sampleNanosecondsPerFrame = perFrame
        }
    }

    /// Records how long a final blackout's lockstep switch took.
    public mutating func recordResume(_ nanoseconds: UInt64) {
        resumeNanoseconds = nanoseconds
    }

    /// Nanoseconds to copy `frames` frames like those of the last samples.
    public func copyNanoseconds(frames: Int) -> Double {
        guard frames > 0 else { return 0 }
        return perFrame(split: frames >= Self.splitFrames) * Double(frames)
    }

    /// Nanoseconds a frame costs in a copy of the kind `split` says: the sample of that kind,
    /// else the other kind's sample scaled by ``splitSpeedup``, else the passes' copy (scaled when
    /// it was of the other kind).
    private func perFrame(split: Bool) -> Double {
        let same = split ? splitSampleNanosecondsPerFrame : sampleNanosecondsPerFrame
        if same > 0 { return same }
        let other = split ? sampleNanosecondsPerFrame : splitSampleNanosecondsPerFrame
        if other > 0 { return split ? other / Self.splitSpeedup : other * Self.splitSpeedup }
        if split == passCopySplit { return passNanosecondsPerFrame }
        return split ? passNanosecondsPerFrame / Self.splitSpeedup : passNanosecondsPerFrame * Self.splitSpeedup
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
