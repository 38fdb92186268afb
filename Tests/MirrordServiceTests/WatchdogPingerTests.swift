import MirrorSystemd
import Synchronization
import Testing

@testable import MirrordService

@Suite("Watchdog pacing")
struct WatchdogPingerTests {
    @Test("progress pings at most four times per watchdog interval, from the engine's progress only")
    func pacing() {
        let notifications = NotificationLog()
        let now = Atomic<UInt64>(1_000_000_000)
        let pinger = WatchdogPinger(notifier: notifications.notifier(watchdog: .seconds(4))) {
            now.load(ordering: .relaxed)
        }
        #expect(pinger.tick == .seconds(1), "the scrub runs every quarter interval")
        pinger.progress()
        #expect(notifications.values("WATCHDOG").count == 1)
        for step in 1...9 {
            now.add(100_000_000, ordering: .relaxed)  // 0.1 s of progress events
            pinger.progress()
            #expect(notifications.values("WATCHDOG").count == 1, "pinged again after \(step * 100) ms")
        }
        now.add(100_000_000, ordering: .relaxed)
        pinger.progress()
        #expect(notifications.values("WATCHDOG").count == 2, "a quarter interval after the last ping")
    }

    @Test("without WatchdogSec= nothing is sent and the scrub runs every five seconds")
    func disabled() {
        let notifications = NotificationLog()
        let pinger = WatchdogPinger(notifier: notifications.notifier(watchdog: nil))
        pinger.progress()
        #expect(notifications.all.isEmpty)
        #expect(pinger.tick == .seconds(5))
    }
}
