import MirrorCore
import Synchronization

/// An ``EngineClock`` that moves only when told: by the test doubles as they "spend" time (a copy,
/// a harvest, a stop), and by the engine's own waits. Every cost the engine measures, every rate
/// and the deadline are then exact and the same in every run.
package final class ScriptedClock: EngineClock {
    private let now = Atomic<UInt64>(1_000_000_000)
    /// Nanoseconds the thread was scripted off its CPU, so far.
    private let offCPU = Atomic<UInt64>(0)

    /// A clock at one second.
    package init() {}

    /// The current reading.
    package func nanoseconds() -> UInt64 { now.load(ordering: .relaxed) }

    /// The reading less every scripted stretch off the CPU (``deschedule(for:)``).
    package func threadCPUNanoseconds() -> UInt64 { nanoseconds() - offCPU.load(ordering: .relaxed) }

    /// Moves the clock by `nanoseconds` instead of waiting.
    package func sleep(nanoseconds: UInt64) { advance(by: nanoseconds) }

    /// Moves the clock forward.
    package func advance(by nanoseconds: UInt64) { now.add(nanoseconds, ordering: .relaxed) }

    /// Moves the clock by `nanoseconds` the thread spends off its CPU (a host that took its core).
    package func deschedule(for nanoseconds: UInt64) {
        deschedule(for: nanoseconds, lost: nanoseconds)
    }

    /// The thread off its CPU for `nanoseconds` in the middle of work that went on without it and
    /// ends `lost` nanoseconds later than it would have (another thread carried on at its pace).
    /// The work, `lost` included, must last at least `nanoseconds`, or the thread's CPU time would
    /// run backwards.
    package func deschedule(for nanoseconds: UInt64, lost: UInt64) {
        offCPU.add(nanoseconds, ordering: .relaxed)
        advance(by: lost)
    }
}
