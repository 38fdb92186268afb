/// One pass of the running (or last) duplex, as `status` lists it in `progress.passes`.
package struct PassReport: Sendable, Hashable, Codable {
    /// The pass's number, from 1.
    package var pass: Int
    /// Dirty frames the pass harvested and copied.
    package var dirtyFrames: Int
    /// Frames dirty again when the pass ended.
    package var remainingDirtyFrames: Int
    /// Frames dirtied per second during the pass.
    package var dirtyRate: Int
    /// The blackout predicted after the pass, microseconds (absent without a prediction).
    package var predictedBlackoutMicroseconds: UInt64?
    /// The CPUs' throttle during the pass, percent.
    package var throttlePercent: Double

    /// A pass as the engine summarised it.
    package init(
        pass: Int, dirtyFrames: Int, remainingDirtyFrames: Int, dirtyRate: Int,
        predictedBlackoutMicroseconds: UInt64?, throttlePercent: Double
    ) {
        self.pass = pass
        self.dirtyFrames = dirtyFrames
        self.remainingDirtyFrames = remainingDirtyFrames
        self.dirtyRate = dirtyRate
        self.predictedBlackoutMicroseconds = predictedBlackoutMicroseconds
        self.throttlePercent = throttlePercent
    }

    /// The wire's names (docs/control.md).
    enum CodingKeys: String, CodingKey {
        case pass
        case dirtyFrames = "dirty_frames"
        case remainingDirtyFrames = "remaining_dirty_frames"
        case dirtyRate = "dirty_rate_fps"
        case predictedBlackoutMicroseconds = "predicted_blackout_us"
        case throttlePercent = "throttle_percent"
    }
}
