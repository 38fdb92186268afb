/// The blackout the engine expects for a number of dirty frames, from its own costs measured in
/// this duplex: how long the last probe took to stop every writer, to harvest every frame and to
/// resume them, and how long the passes took to copy a frame.
///
/// A *probe* is a blackout of a few microseconds taken after each pass: stop, one get-only harvest
/// of every frame (nothing is cleared, so nothing is missed), resume. It measures the stop and the
/// final harvest in the conditions of the real blackout, on this host, at this throttle.
public struct BlackoutModel: Sendable, Hashable {
    /// Frames a list must have before its copy is split between two threads (as the backend's
    /// copy path does), which about halves the time per frame.
    public static let splitFrames = 512

    /// The last probe's stop, in nanoseconds.
    public private(set) var stopNanoseconds: UInt64 = 0
    /// The last probe's harvest of every frame, in nanoseconds.
    public private(set) var harvestNanoseconds: UInt64 = 0
    /// The last probe's resume, in nanoseconds.
    public private(set) var resumeNanoseconds: UInt64 = 0
    /// Nanoseconds per frame of the last pass copy short enough to run on one thread, and of the
    /// last one long enough to be split (0: not measured yet).
    public private(set) var singleNanosecondsPerFrame: Double = 0
    public private(set) var splitNanosecondsPerFrame: Double = 0

    /// A model with nothing measured yet.
    public init() {}

    /// Whether a probe and a copy have been measured, so that predictions mean something.
    public var isCalibrated: Bool {
        stopNanoseconds + harvestNanoseconds > 0 && (singleNanosecondsPerFrame > 0 || splitNanosecondsPerFrame > 0)
    }

    /// Records a probe.
    public mutating func recordProbe(stop: UInt64, harvest: UInt64, resume: UInt64) {
        stopNanoseconds = stop
        harvestNanoseconds = harvest
        resumeNanoseconds = resume
    }

    /// Records a pass's copy of `frames` frames in `nanoseconds`; copies of a handful of frames
    /// say more about the call than about a frame and are not taken.
    public mutating func recordCopy(frames: Int, nanoseconds: UInt64) {
        guard frames >= 64 else { return }
        let perFrame = Double(nanoseconds) / Double(frames)
        if frames >= Self.splitFrames { splitNanosecondsPerFrame = perFrame } else { singleNanosecondsPerFrame = perFrame }
    }

    /// Nanoseconds per frame for a copy of `frames` frames: measured for copies of its kind
    /// (split or not), or derived from the other kind (a split copy runs about twice as fast).
    public func copyNanosecondsPerFrame(frames: Int) -> Double {
        if frames >= Self.splitFrames {
            return splitNanosecondsPerFrame > 0 ? splitNanosecondsPerFrame : singleNanosecondsPerFrame / 2
        }
        return singleNanosecondsPerFrame > 0 ? singleNanosecondsPerFrame : splitNanosecondsPerFrame * 2
    }

    /// Nanoseconds to copy `frames` frames.
    public func copyNanoseconds(frames: Int) -> Double {
        copyNanosecondsPerFrame(frames: frames) * Double(frames)
    }

    /// The fixed part of a blackout: stop, final harvest, resume.
    public var overheadNanoseconds: UInt64 { stopNanoseconds + harvestNanoseconds + resumeNanoseconds }

    /// The blackout predicted for `frames` dirty frames, in nanoseconds.
    public func predict(frames: Int) -> UInt64 {
        overheadNanoseconds + UInt64(copyNanoseconds(frames: frames).rounded())
    }

    /// The most frames whose blackout is predicted within `target` nanoseconds (0 when the fixed
    /// part alone exceeds it).
    public func frameBudget(target: UInt64) -> Int {
        guard target > overheadNanoseconds, isCalibrated else { return 0 }
        let room = Double(target - overheadNanoseconds)
        let unsplit = min(Self.splitFrames - 1, Int(room / copyNanosecondsPerFrame(frames: 1)))
        let split = Int(room / copyNanosecondsPerFrame(frames: Self.splitFrames))
        return split >= Self.splitFrames ? max(unsplit, split) : unsplit
    }
}
