import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a writer (CPU or DMA engine) to its rate: after each batch it sleeps until the batch's
/// share of time has passed, parked so that a blackout or a shootdown need not wait for it.
struct RatePacer {
    /// The longest single sleep, so that a shutdown is noticed soon.
    static let longestSleep: UInt64 = 50_000_000
    /// How far behind its schedule a writer may fall (descheduled) before it stops catching up.
    static let catchUpLimit: UInt64 = 20_000_000

    /// Nanoseconds one batch may take at the configured rate; 0 for no limit.
    let nanosPerBatch: UInt64
    private var deadline = MonotonicClock.nanoseconds()

    /// A pacer for batches of `bytesPerBatch` at `bytesPerSecond` (nil: unlimited).
    init(bytesPerBatch: Int, bytesPerSecond: Int?) {
        nanosPerBatch = bytesPerSecond.map { UInt64(bytesPerBatch) * 1_000_000_000 / UInt64(max(1, $0)) } ?? 0
    }

    /// Called after each batch: sleeps (parked) if the writer is ahead of its rate. Returns whether
    /// it slept, in which case the writer has passed a checkpoint and must reload its flags.
    mutating func pace(_ writer: Int, controller: BlackoutController, seen: inout UInt64) -> Bool {
        guard nanosPerBatch > 0 else { return false }
        deadline &+= nanosPerBatch
        let now = MonotonicClock.nanoseconds()
        if deadline > now {
            controller.park(writer)
            sleepNanoseconds(min(deadline - now, Self.longestSleep))
            controller.unpark(writer, seen: &seen)
            return true
        }
        if now - deadline > Self.catchUpLimit {
            deadline = now  // fell far behind (descheduled): do not burst to catch up
        }
        return false
    }
}

/// Sleeps the calling thread.
func sleepNanoseconds(_ nanos: UInt64) {
    var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
