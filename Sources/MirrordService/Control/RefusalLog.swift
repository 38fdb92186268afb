#if canImport(Glibc)
import Glibc
#endif

/// Which refusals of the control socket are journalled: the first of each peer uid in an
/// interval; the others are counted, and their number is journalled once the interval ends. A
/// peer that connects and closes thousands of times a second costs two journal lines a minute,
/// never enough for journald's rate limit to drop mirrord's own critical entries.
struct RefusalLog {
    /// One uid's interval: when it began (its first refusal, journalled) and the refusals since.
    private struct Window {
        var opened: UInt64
        var suppressed: Int
    }

    /// The refusals of one uid not journalled in an interval that has ended.
    struct Suppressed: Equatable {
        /// The peer's uid (`uid_t.max` for a peer whose credentials the kernel did not give).
        var uid: uid_t
        /// Refusals counted and not journalled.
        var count: Int
    }

    /// The interval's length, in nanoseconds of `MonotonicClock`.
    let intervalNanoseconds: UInt64
    private var windows: [uid_t: Window] = [:]

    /// A log of no refusal yet.
    init(intervalNanoseconds: UInt64) { self.intervalNanoseconds = intervalNanoseconds }

    /// Records a refusal of `uid` at `now`; true if it opens an interval and is to be journalled.
    /// Call ``ended(at:)`` first, so that an interval that is over is reported before a new one opens.
    mutating func refused(uid: uid_t, at now: UInt64) -> Bool {
        if var window = windows[uid], now &- window.opened < intervalNanoseconds {
            window.suppressed += 1
            windows[uid] = window
            return false
        }
        windows[uid] = Window(opened: now, suppressed: 0)
        return true
    }

    /// Ends the intervals that are over at `now`; returns those in which refusals were counted.
    mutating func ended(at now: UInt64) -> [Suppressed] {
        var report: [Suppressed] = []
        for (uid, window) in windows where now &- window.opened >= intervalNanoseconds {
            windows[uid] = nil
            if window.suppressed > 0 { report.append(Suppressed(uid: uid, count: window.suppressed)) }
        }
        return report.sorted { $0.uid < $1.uid }
    }
}
