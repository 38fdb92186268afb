import MirrorCore
import Synchronization

/// An ``EngineClock`` that moves only when told: by the test doubles as they "spend" time (a copy,
/// a harvest, a stop), and by the engine's own waits. Every cost the engine measures, every rate
/// and the deadline are then exact and the same in every run.
package final class ScriptedClock: EngineClock {
    private let now = Atomic<UInt64>(1_000_000_000)

    /// A clock at one second.
    package init() {}

    /// The current reading.
    package func nanoseconds() -> UInt64 { now.load(ordering: .relaxed) }

    /// Moves the clock by `nanoseconds` instead of waiting.
    package func sleep(nanoseconds: UInt64) { advance(by: nanoseconds) }

    /// Moves the clock forward.
    package func advance(by nanoseconds: UInt64) { now.add(nanoseconds, ordering: .relaxed) }
}
