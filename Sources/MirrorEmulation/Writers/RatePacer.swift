import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a writer (CPU or DMA engine) to its rate and to its throttle: after each batch it sleeps
/// until the batch's share of time has passed, parked so that a blackout or a shootdown need not
/// wait for it.
///
/// A throttle `t` stretches every batch to `1 / (1 - t)` of its unthrottled time (the time it ran,
/// or its share at the rate limit, whichever is longer): the writer then makes `1 - t` of the
/// stores it would. Short debts are carried until they are worth a sleep. The time a writer spent
/// stopped at a checkpoint is not its own and is not stretched (``restartBatch()``), and a throttle
/// lifted, or changed, ends the sleep it imposed within ``throttleSlice``: what a throttle took is
/// not owed once it is gone, so the writer resumes its own pace as the blackout ends.
struct RatePacer {
    /// The longest single sleep at the rate limit, so that a shutdown is noticed soon.
    static let longestSleep: UInt64 = 50_000_000
    /// How long a throttled writer sleeps before it looks at its throttle (and for a shutdown)
    /// again.
    static let throttleSlice: UInt64 = 2_000_000
    /// How far behind its schedule a writer may fall (descheduled) before it stops catching up.
    static let catchUpLimit: UInt64 = 20_000_000
    /// The shortest sleep a throttle takes; a smaller debt is carried to the next batch (a sleep
    /// costs tens of microseconds of its own).
    static let shortestThrottleSleep: UInt64 = 100_000

    /// Nanoseconds one batch may take at the configured rate; 0 for no limit.
    let nanosPerBatch: UInt64
    /// The clock and the sleep (a test's own, or the monotonic clock and `nanosleep`).
    private let now: () -> UInt64
    private let pause: (UInt64) -> Void
    private var deadline: UInt64
    private var batchStart: UInt64
    /// Whether the last batch ran throttled (a throttle that starts charges nothing before it).
    private var throttled = false

    /// A pacer for batches of `bytesPerBatch` at `bytesPerSecond` (nil: unlimited).
    init(
        bytesPerBatch: Int, bytesPerSecond: Int?,
        now: @escaping () -> UInt64 = MonotonicClock.nanoseconds, pause: @escaping (UInt64) -> Void = sleepNanoseconds
    ) {
        nanosPerBatch = bytesPerSecond.map { UInt64(bytesPerBatch) * 1_000_000_000 / UInt64(max(1, $0)) } ?? 0
        self.now = now
        self.pause = pause
        deadline = now()
        batchStart = deadline
    }

    /// Starts the batch's time now: the writer was stopped at a checkpoint (a blackout, a probe),
    /// time a throttle must not stretch.
    mutating func restartBatch() {
        batchStart = now()
    }

    /// Called after each batch with a reader of the writer's throttle (0: none), read now and
    /// again while the writer sleeps: sleeps (parked) if the writer is ahead of its schedule, a
    /// throttled writer until it has made up its batch's stretch (unless the throttle changes or
    /// `shuttingDown`). Returns whether it slept, in which case the writer has passed a checkpoint
    /// and must reload its flags.
    mutating func pace(
        _ writer: Int, controller: BlackoutController, seen: inout UInt64,
        throttle readThrottle: () -> Double = { 0 }, shuttingDown: () -> Bool = { false }
    ) -> Bool {
        let throttle = readThrottle()
        let now = now()
        if throttled && throttle == 0 {
            // The throttle is lifted: what it took is not owed, the writer keeps its pace from now.
            throttled = false
            deadline = now
            batchStart = now
            return false
        }
        guard nanosPerBatch > 0 || throttle > 0 else { return false }
        if throttle > 0 && !throttled {
            // The throttle starts now: the unthrottled past is not a debt.
            throttled = true
            batchStart = now
            deadline = max(deadline, now)
            return false
        }
        let minimumSleep: UInt64
        if throttle > 0 {
            let unthrottled = max(now &- batchStart, nanosPerBatch)
            deadline = max(deadline, batchStart) &+ UInt64(Double(unthrottled) / (1 - throttle))
            minimumSleep = Self.shortestThrottleSleep
        } else {
            deadline &+= nanosPerBatch
            minimumSleep = 1
        }
        if deadline > now && deadline - now >= minimumSleep {
            controller.park(writer)
            if throttle > 0 {
                // In slices, so that a throttle lifted or changed ends the sleep it imposed.
                var time = now
                while time < deadline && !shuttingDown() {
                    pause(min(deadline - time, Self.throttleSlice))
                    time = self.now()
                    if readThrottle() != throttle {
                        deadline = min(deadline, time)
                        break
                    }
                }
            } else {
                pause(min(deadline - now, Self.longestSleep))
            }
            controller.unpark(writer, seen: &seen)
            batchStart = self.now()
            return true
        }
        if now > deadline && now - deadline > Self.catchUpLimit {
            deadline = now  // fell far behind (descheduled): do not burst to catch up
        }
        batchStart = now
        return false
    }
}

/// Sleeps the calling thread.
func sleepNanoseconds(_ nanos: UInt64) {
    var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
