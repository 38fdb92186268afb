#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds on the monotonic clock, for measuring passes and blackouts without allocation.
public enum MonotonicClock {
    /// The current reading of `CLOCK_MONOTONIC`, in nanoseconds.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Whole microseconds elapsed since `start` (a reading of ``nanoseconds()``).
    @inline(__always)
    public static func microseconds(since start: UInt64) -> UInt64 {
        (nanoseconds() &- start) / 1_000
    }
}
