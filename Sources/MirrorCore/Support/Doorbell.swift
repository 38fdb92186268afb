import CMirrorShims
import Synchronization

/// A wake-up between two threads that hand work to each other: one rings, the other sleeps on
/// the futex until the bell has rung since it last looked, or until a timeout.
///
/// A waiter reads ``generation`` before it checks for work, then waits for it to change: a ring
/// between the check and the wait is never lost.
package final class Doorbell: @unchecked Sendable {
    // @unchecked: `word` is an atomic in memory of its own (a futex word must not move), written
    // only through atomic operations and the futex calls.
    private let word: UnsafeMutablePointer<Atomic<UInt32>>

    /// A bell that has not rung.
    package init() {
        word = .allocate(capacity: 1)
        word.initialize(to: Atomic(0))
    }

    deinit {
        word.deinitialize(count: 1)
        word.deallocate()
    }

    /// How many times the bell has rung (wrapping): read before checking for work.
    package var generation: UInt32 { word.pointee.load(ordering: .acquiring) }

    /// Wakes every waiter.
    package func ring() {
        word.pointee.add(1, ordering: .releasing)
        mirrord_futex_wake_all(UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self))
    }

    /// Sleeps until the bell rings after `seen` was read, or `timeoutNanoseconds` pass.
    package func wait(seen: UInt32, timeoutNanoseconds: UInt64) {
        guard generation == seen else { return }
        _ = mirrord_futex_wait(
            UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self), seen, timeoutNanoseconds)
    }
}
