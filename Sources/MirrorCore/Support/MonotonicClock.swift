#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds on the monotonic clock, for measuring passes and blackouts without allocation, and
/// on the calling thread's CPU-time clock, for telling how much of a stretch it did not run.
public enum MonotonicClock {
    /// The current reading of `CLOCK_MONOTONIC`, in nanoseconds.
    @inline(__always)
    public static func nanoseconds() -> UInt64 { reading(CLOCK_MONOTONIC) }

    /// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds: with paravirtual
    /// time accounting, steal time is not counted. A system call, not a vDSO read.
    public static func threadCPUNanoseconds() -> UInt64 { reading(CLOCK_THREAD_CPUTIME_ID) }

    @inline(__always)
    private static func reading(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Whole microseconds elapsed since `start` (a reading of ``nanoseconds()``).
    @inline(__always)
    public static func microseconds(since start: UInt64) -> UInt64 {
        (nanoseconds() &- start) / 1_000
    }
}
