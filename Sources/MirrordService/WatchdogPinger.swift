import MirrorCore
import MirrorSystemd
import Synchronization

/// Sends `WATCHDOG=1` when the engine makes progress, at most four times per watchdog interval.
///
/// It is called from the engine's own progress events and from the lockstep scrub, never from a
/// timer of its own: if the engine hangs, the pings stop and systemd kills and restarts mirrord.
final class WatchdogPinger: Sendable {
    private let notifier: SystemdNotifier
    private let minimumGap: UInt64
    private let lastPing = Atomic<UInt64>(0)
    private let clock: @Sendable () -> UInt64

    /// A pinger for `notifier`'s watchdog; `clock` gives monotonic nanoseconds.
    init(notifier: SystemdNotifier, clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }) {
        self.notifier = notifier
        self.clock = clock
        if let interval = notifier.watchdogInterval {
            let (seconds, attoseconds) = interval.components
            minimumGap = (UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)) / 4
        } else {
            minimumGap = 0
        }
    }

    /// Whether systemd asked for a watchdog.
    var isEnabled: Bool { notifier.watchdogInterval != nil }

    /// How often the lockstep scrub should run to keep the watchdog fed (or a default).
    var tick: Duration { isEnabled ? .nanoseconds(Int64(minimumGap)) : .seconds(5) }

    /// Records progress; pings systemd if the last ping is a quarter interval old.
    func progress() {
        guard isEnabled else { return }
        let now = clock()
        let last = lastPing.load(ordering: .relaxed)
        guard now &- last >= minimumGap || last == 0 else { return }
        if lastPing.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            notifier.watchdog()
        }
    }
}
