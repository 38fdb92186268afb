import Testing

@testable import MirrorEmulation

/// The pacer on a clock the test owns: its sleeps advance the clock, so every figure is exact.
@Suite("RatePacer: a throttle takes its share of a writer's time, and nothing once lifted")
struct RatePacerTests {
    /// A clock and a sleep that only advances it; `throttle` is what the writer reads when it
    /// looks again, from `liftAt` on 0.
    final class Time {
        var now: UInt64 = 0
        var sleeps: [UInt64] = []
        var throttle = 0.99
        var liftAt = UInt64.max

        var current: Double { now >= liftAt ? 0 : throttle }

        func pacer(nanosPerBatch: UInt64) -> RatePacer {
            // bytesPerBatch 1,000 at 10^12 / nanosPerBatch bytes a second.
            RatePacer(
                bytesPerBatch: 1_000, bytesPerSecond: Int(1_000_000_000_000 / nanosPerBatch),
                now: { self.now },
                pause: {
                    self.now += $0
                    self.sleeps.append($0)
                })
        }
    }

    let controller = BlackoutController(tracksDirty: [true])
    static let ms: UInt64 = 1_000_000

    /// One batch of `nanoseconds`, then the pacer with the throttle as it stands.
    func batch(_ pacer: inout RatePacer, _ time: Time, _ nanoseconds: UInt64) -> Bool {
        time.now += nanoseconds
        var seen: UInt64 = 0
        return pacer.pace(0, controller: controller, seen: &seen, throttle: { time.current })
    }

    @Test("a 99 % throttle stretches a batch a hundredfold; lifted, it ends the sleep within a slice and is not owed")
    func lifted() {
        let time = Time()
        var pacer = time.pacer(nanosPerBatch: Self.ms)
        #expect(!batch(&pacer, time, 0), "the throttle starts: nothing before it is a debt")
        time.liftAt = 7 * Self.ms
        #expect(batch(&pacer, time, Self.ms))
        // The batch owes 99 ms; the writer looks at its throttle every 2 ms and stops at the lift.
        #expect(time.sleeps == [2, 2, 2].map { $0 * Self.ms }, "\(time.sleeps)")
        time.sleeps = []
        // Lifted: the writer runs at its rate from now, not asleep until the old deadline.
        for _ in 0..<5 { #expect(!batch(&pacer, time, Self.ms)) }
        #expect(time.sleeps.isEmpty, "\(time.sleeps)")
    }

    @Test("negative control: a throttle that stays takes its 99 % of the writer's time")
    func stays() {
        let time = Time()
        var pacer = time.pacer(nanosPerBatch: Self.ms)
        _ = batch(&pacer, time, 0)
        var ran: UInt64 = 0
        while time.now < 1_000 * Self.ms {
            ran += Self.ms
            _ = batch(&pacer, time, Self.ms)
        }
        #expect(ran >= 9 * Self.ms && ran <= 11 * Self.ms, "ran \(ran / Self.ms) ms of 1,000")
    }

    @Test("time stopped at a checkpoint is not the writer's: a throttle does not stretch it")
    func stopped() {
        let time = Time()
        time.throttle = 0.5
        var pacer = time.pacer(nanosPerBatch: Self.ms)
        _ = batch(&pacer, time, 0)
        time.now += 10 * Self.ms  // stopped in a blackout at the batch's checkpoint
        pacer.restartBatch()
        #expect(batch(&pacer, time, Self.ms))
        #expect(time.sleeps == [Self.ms], "half of the batch's own millisecond, not of eleven: \(time.sleeps)")
    }
}
