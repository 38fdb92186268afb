/// Counts the lockstep scrub's work between journal lines, so that a healthy lockstep says so now
/// and then: after the first whole sweep of memory, then at most once per ``interval`` (at the end
/// of a sweep), never once per slice.
struct ScrubLedger: Sendable {
    /// The least time between two lines (15 minutes).
    static let interval: UInt64 = 15 * 60 * 1_000_000_000

    /// What a line reports: the work since the previous line.
    struct Line: Sendable, Hashable {
        /// Frames compared.
        var frames: Int
        /// Whole sweeps of memory completed.
        var sweeps: Int
        /// Whether this is the first line since the duplex.
        var first: Bool
    }

    private var frames = 0
    private var sweeps = 0
    private var lastLine: UInt64?

    /// Records a slice of `count` frames, which ended a sweep when `sweepEnded`, at time `now`
    /// (nanoseconds); returns the line to log when one is due.
    mutating func record(frames count: Int, sweepEnded: Bool, now: UInt64) -> Line? {
        frames += count
        guard sweepEnded else { return nil }
        sweeps += 1
        if let last = lastLine, now &- last < Self.interval { return nil }
        defer {
            frames = 0
            sweeps = 0
            lastLine = now
        }
        return Line(frames: frames, sweeps: sweeps, first: lastLine == nil)
    }
}
