#if canImport(Glibc)
import Glibc
#endif

/// Time as the duplex engine reads and spends it: the monotonic clock, and a way to wait. The
/// engine's costs, rates, deadline and the workload's baseline are all measured on it, so that a
/// test can give the engine a clock it advances itself and check every decision without timing.
public protocol EngineClock: Sendable {
    /// Nanoseconds on a monotonic clock.
    func nanoseconds() -> UInt64
    /// Nanoseconds the calling thread has run on a CPU. Beside ``nanoseconds()`` it tells how much
    /// of a stretch the thread did not run: its core was given to another thread, or taken by the
    /// host (a virtual machine's steal time), which no throttle or prediction can win back.
    func threadCPUNanoseconds() -> UInt64
    /// Waits `nanoseconds`.
    func sleep(nanoseconds: UInt64)
}

/// The system's monotonic clock and `nanosleep`.
public struct SystemClock: EngineClock {
    /// The system clock.
    public init() {}

    public func nanoseconds() -> UInt64 { MonotonicClock.nanoseconds() }

    public func threadCPUNanoseconds() -> UInt64 { MonotonicClock.threadCPUNanoseconds() }

    public func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
