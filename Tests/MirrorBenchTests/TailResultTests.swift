import MirrorCore
import Testing

@testable import MirrorBench

/// `bench --only tail`: its percentiles, and where it says a long blackout's time went.
@Suite("Bench tail: the blackout's distribution and its causes")
struct TailResultTests {
    /// A sample of 100 final frames at a floor of 1 µs each (stop 0): a floor of 100 µs.
    /// `off`: the engine's own count of its time off the CPU in the blackout (default: all of it).
    func raw(
        duration: UInt64, window: UInt64? = nil, run: UInt64 = 0, wait: UInt64 = 0, wake: UInt64? = nil,
        lost: UInt64 = 0, helperWait: UInt64 = 0, again: UInt64? = nil, ownFloor: Double = 1_000, off: UInt64? = nil
    ) -> TailBench.RawSample {
        var record = DuplexSummary.Blackout(
            durationMicroseconds: duration, stopMicroseconds: 0, finalFrames: 100, finalCopyMicroseconds: duration,
            verifyMicroseconds: 0)
        record.offCPUMicroseconds = off ?? duration
        return TailBench.RawSample(
            target: 256, record: record, floorFrameNanoseconds: ownFloor, again: again ?? duration * 1_000,
            window: window ?? duration * 1_000, othersRun: 0, busiestOther: nil, busiestSystemTask: nil,
            caller: SchedulerCounters(runNanoseconds: run, waitNanoseconds: wait),
            helper: SchedulerCounters(runNanoseconds: 0, waitNanoseconds: helperWait),
            helperShared: wake != nil, helperWake: wake, helperLost: lost, steal: 0)
    }

    @Test("p50, p99, p99.9 and the maximum are nearest-rank")
    func percentiles() {
        let values = (1...1_000).map(Double.init).shuffled()
        let p = TailResult.Percentiles(values)
        #expect(p.p50 == 500)
        #expect(p.p99 == 990)
        #expect(p.p999 == 999)
        #expect(p.max == 1_000)
        #expect(TailResult.Percentiles([]).max == 0)
        #expect(TailResult.Percentiles([7]).p999 == 7)
    }

    /// Floor 100 µs (100 frames at 1 µs): over 1.5× (the p99.9 bound) means over 150 µs; the
    /// excess must be covered.
    @Test("a sample over 1.5 times its floor is put down to the first cause that covers its excess")
    func causes() {
        #expect(TailSample.attributedAbove == 1.5)
        // Within 1.5 times the floor, whatever the counters say.
        #expect(TailSample(raw(duration: 145, run: 10_000), floorFrameNanoseconds: 1_000).cause == .within)
        // Past it, below 2x: attributed too (here nothing covers it).
        #expect(TailSample(raw(duration: 160, run: 160_000), floorFrameNanoseconds: 1_000).cause == .unattributed)
        // 500 µs: excess 350 µs. The thread ran 150 µs and waited 0: 350 µs neither (the host).
        let host = TailSample(raw(duration: 500, run: 150_000), floorFrameNanoseconds: 1_000)
        #expect(host.blackoutRatio == 5)
        #expect(host.callerHostMicroseconds == 350)
        #expect(host.cause == .host)
        // Ran 150 µs, waited 340 µs on the run queue: another thread held the core.
        #expect(
            TailSample(raw(duration: 500, run: 150_000, wait: 340_000), floorFrameNanoseconds: 1_000).cause == .runQueue
        )
        // Ran the whole 500 µs, the helper woke after 360 µs.
        #expect(
            TailSample(raw(duration: 500, run: 500_000, wake: 360_000), floorFrameNanoseconds: 1_000).cause
                == .helperWake)
        // Waited for the helper 360 µs while it was off its CPU: the host, unless the helper
        // waited that long on a run queue.
        #expect(
            TailSample(raw(duration: 500, run: 500_000, lost: 360_000), floorFrameNanoseconds: 1_000).cause == .host)
        #expect(
            TailSample(
                raw(duration: 500, run: 500_000, lost: 360_000, helperWait: 360_000), floorFrameNanoseconds: 1_000
            )
            .cause == .runQueue)
        // Both cover part of the excess (host 150 µs, queued 200 µs): the larger names it.
        #expect(
            TailSample(raw(duration: 500, run: 150_000, wait: 200_000), floorFrameNanoseconds: 1_000).cause == .runQueue
        )
        #expect(
            TailSample(raw(duration: 500, run: 100_000, wait: 120_000), floorFrameNanoseconds: 1_000).cause == .host)
        // The copy's time off the CPU is not counted again as memory: 500 µs copied again in
        // 100, but 350 of the 500 were the host's (memory 50 µs; counted again, 400 would name
        // host_memory).
        let both = TailSample(raw(duration: 500, run: 150_000, again: 100_000), floorFrameNanoseconds: 1_000)
        #expect(both.cause == .host)
        // Ran throughout, but the same frames copied again took 140 µs: the host's memory.
        #expect(
            TailSample(raw(duration: 500, run: 500_000, again: 140_000), floorFrameNanoseconds: 1_000).cause
                == .hostMemory)
        // Ran throughout, the same frames as slow, but the plain memcpy beside it at 4 µs a
        // frame: the memory was slow for everyone.
        #expect(
            TailSample(raw(duration: 500, run: 500_000, ownFloor: 4_000), floorFrameNanoseconds: 1_000).cause
                == .slowMemory)
        // A run-queue wait of 300 µs in the counters' window, but the engine off its CPU only
        // 10 µs inside the blackout (the wait came before the stop): not the blackout's. The
        // same frames copied again in 100 µs say the host's memory. A wait of 360 µs that the
        // engine's own count puts inside the blackout names the run queue.
        #expect(
            TailSample(
                raw(duration: 500, run: 500_000, wait: 300_000, again: 100_000, off: 10), floorFrameNanoseconds: 1_000
            )
            .cause == .hostMemory)
        #expect(
            TailSample(
                raw(duration: 500, run: 140_000, wait: 360_000, again: 400_000, off: 360), floorFrameNanoseconds: 1_000
            )
            .cause == .runQueue)
        // Ran throughout, nothing taken: ours.
        #expect(TailSample(raw(duration: 500, run: 500_000), floorFrameNanoseconds: 1_000).cause == .unattributed)
    }

    @Test("the distributions count the samples over 1.5 times their floor by cause, per size and in all")
    func distributions() {
        let samples = [
            TailSample(raw(duration: 150), floorFrameNanoseconds: 1_000),
            TailSample(raw(duration: 500, run: 500_000), floorFrameNanoseconds: 1_000),
            TailSample(raw(duration: 500, run: 100_000), floorFrameNanoseconds: 1_000),
        ]
        let result = TailResult(samples: samples, seconds: 1, hostStealShare: 0)
        let all = result.distributions.last!
        #expect(all.targetFrames == nil && all.count == 3)
        #expect(all.attributed == ["unattributed": 1, "host": 1])
        #expect(result.distributions.first { $0.targetFrames == 1_024 }?.count == 0)
        #expect(result.worst.first?.blackoutRatio == 5)
    }

    /// The run time schedstat reports is the thread's CPU clock: spinning until that clock moved
    /// 20 ms moves the counter as much, however busy the machine (wall time would not).
    @Test("the scheduler's counters of this thread grow by the time it ran")
    func schedulerCounters() throws {
        let before = try #require(SchedulerCounters.currentThread())
        let start = MonotonicClock.threadCPUNanoseconds()
        while MonotonicClock.threadCPUNanoseconds() - start < 20_000_000 {}
        let spent = try #require(SchedulerCounters.currentThread()).since(before)
        #expect(spent.runNanoseconds >= 19_000_000, "ran 20 ms, schedstat says \(spent.runNanoseconds) ns")
        #expect(SchedulerCounters.thread(-1) == nil)
        #expect(SchedulerCounters.hostStealNanoseconds() != nil)
    }
}
