/// What one harvest call did.
public struct HarvestResult: Sendable, Hashable {
    /// How many frame numbers were written to the output vector (0 for a clear-only harvest).
    public var reported: Int
    /// How many frames had their dirty state cleared by this call.
    public var cleared: Int
    /// The first frame the call did not examine: the range's upper bound when the whole range was
    /// covered, or where the scan stopped because the output vector was full. Frames from here on
    /// keep their dirty state for the next call.
    public var scanEnd: Int

    /// Creates a result.
    public init(reported: Int, cleared: Int, scanEnd: Int) {
        self.reported = reported
        self.cleared = cleared
        self.scanEnd = scanEnd
    }
}
