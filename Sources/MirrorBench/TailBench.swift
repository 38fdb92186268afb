import CMirrorLinux
import CMirrorShims
import Foundation
import MirrorCore
import MirrorEmulation
import MirrordConfig
import MirrordService

/// `mirrord-bench --only tail`: the blackout's worst case, not its typical one. Many blackouts of
/// about 256 and 1,024 final frames on a 1 GiB machine running the default workload, each with
/// its floor measured beside it, and around each the scheduler's counters of the two copying
/// threads and the host's steal time, so that every long one says where its time went.
///
/// A sample: tracking armed and cleared, `target` random frames marked dirty (the workload adds
/// its own in the moment before the stop), then the engine's own blackout
/// (``DuplexEngine/measureBlackout(frameList:mismatches:)``, lists touched once for the whole
/// run). Its floor: in a blackout of its own right after (the same stopped writers), one thread's
/// plain `memcpy` of as many other random frames; the per-frame cost is the median of the floors
/// of the samples around it, so that one interrupted floor does not flatter its sample.
struct TailBench {
    /// Final frames the samples aim at, taken in turns so that both sizes meet the same moments.
    static let targetFrames = [256, 1_024]
    /// Samples either side whose floors give a sample's per-frame cost (their median).
    static let floorNeighbours = 4
    /// The longest floor copy (frames); a sample with more final frames is floored at this many.
    static let floorCapacity = 16_384
    /// The pause between samples, for the workload to run and the helper to fall asleep (as it
    /// has between a duplex's passes and its blackout).
    static let pauseMicroseconds: UInt32 = 20_000

    /// Samples of each size.
    var samplesPerSize: Int

    /// Takes the samples and sums them up.
    func measure() throws -> TailResult {
        let (machine, engine) = try MachineBenchmarks.blackoutMachine()
        defer { machine.shutdown() }
        let frameList = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        let mismatches = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: DuplexEngine.mismatchCapacity)
        let floorOffsets = UnsafeMutableBufferPointer<Int>.allocate(capacity: Self.floorCapacity)
        defer {
            frameList.deallocate()
            mismatches.deallocate()
            floorOffsets.deallocate()
        }
        frameList.initialize(repeating: 0)
        mismatches.initialize(repeating: 0)
        floorOffsets.initialize(repeating: 0)
        var random = WyRandom(seed: 29)
        let otherTasks = SchedulerCounters.otherTasks()
        let stealBefore = SchedulerCounters.hostStealNanoseconds()
        let began = MonotonicClock.nanoseconds()
        var raw: [RawSample] = []
        for _ in 0..<samplesPerSize {
            for target in Self.targetFrames {
                raw.append(
                    try sample(
                        machine, engine: engine, target: target, seed: random.next(), frameList: frameList,
                        mismatches: mismatches, floorOffsets: floorOffsets, otherTasks: otherTasks, random: &random))
            }
        }
        let seconds = Double(MonotonicClock.nanoseconds() - began) / 1e9
        let steal = SchedulerCounters.hostStealNanoseconds().flatMap { after in stealBefore.map { after &- $0 } }
        return TailResult(
            samples: floored(raw), seconds: seconds,
            hostStealShare: steal.map {
                Double($0) / 1e9 / seconds / Double(ProcessInfo.processInfo.activeProcessorCount)
            })
    }

    /// One blackout as measured, before its floor is settled.
    struct RawSample {
        var target: Int
        var record: DuplexSummary.Blackout
        /// One thread's plain copy of `record.finalFrames` random frames, per frame, in the floor's
        /// blackout.
        var floorFrameNanoseconds: Double
        /// The same final frames copied again by the same path, caches flushed, in a blackout
        /// right after.
        var again: UInt64
        var window: UInt64
        /// The run time of this process's other threads (stopped CPUs, DMA, …) in the window.
        var othersRun: UInt64
        /// The one of them that ran most, and how long.
        var busiestOther: (name: String, nanoseconds: UInt64)?
        /// The task of another process that ran most in the window, and how long.
        var busiestSystemTask: (name: String, nanoseconds: UInt64)?
        var caller: SchedulerCounters?
        var helper: SchedulerCounters?
        var helperShared: Bool
        var helperWake: UInt64?
        var helperLost: UInt64
        var steal: UInt64?
    }

    private func sample(
        _ machine: EmulatedMachine, engine: DuplexEngine, target: Int, seed: UInt64,
        frameList: UnsafeMutableBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>,
        floorOffsets: UnsafeMutableBufferPointer<Int>, otherTasks: [String: String], random: inout WyRandom
    ) throws -> RawSample {
        try machine.startTracking()
        _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .clear, into: frameList)
        MachineBenchmarks.dirtyRandomFrames(machine, count: target, seed: seed) { Self.touch(machine, frame: $0) }
        let frameCount = machine.geometry.frameCount
        let helperBefore = machine.copyHelperSnapshot
        let helperCountersBefore = helperBefore.flatMap { SchedulerCounters.thread($0.threadID) }
        let copying: Set<Int32> = [mirrord_thread_id(), helperBefore?.threadID ?? 0]
        // The long scan first: our own threads' window should start as near the stop as it can.
        let otherTasksBefore = SchedulerCounters.tasks(otherTasks.keys)
        let othersBefore = SchedulerCounters.processThreads(excluding: copying)
        let stealBefore = SchedulerCounters.hostStealNanoseconds()
        let lostBefore = machine.copyThreadsOffCPUNanoseconds
        let callerBefore = SchedulerCounters.currentThread()
        // The engine's own run time from its CPU clock: schedstat's first field, for a thread that
        // is running, is as of its last tick or switch (up to 4 ms old at 250 Hz).
        let callerCPUBefore = MonotonicClock.threadCPUNanoseconds()
        let start = MonotonicClock.nanoseconds()
        // Read with the writers still stopped, so that the counters cover the blackout and
        // nothing of the writers' run after it: the clock and the copying threads' counters
        // first, the scans of every other thread and task (~0.5 ms) after, out of the window.
        var after: After?
        let record = try engine.measureBlackout(frameList: frameList, mismatches: mismatches) {
            let clock = MonotonicClock.nanoseconds()
            let callerCPU = MonotonicClock.threadCPUNanoseconds()
            let caller = SchedulerCounters.currentThread()
            let helper = machine.copyHelperSnapshot
            let helperCounters = helper.flatMap { SchedulerCounters.thread($0.threadID) }
            let lost = machine.copyThreadsOffCPUNanoseconds
            let steal = SchedulerCounters.hostStealNanoseconds()
            after = After(
                others: SchedulerCounters.processThreads(excluding: copying),
                otherTasks: SchedulerCounters.tasks(otherTasks.keys), lost: lost, steal: steal, helper: helper,
                helperCounters: helperCounters,
                caller: caller.map {
                    SchedulerCounters(runNanoseconds: callerCPU, waitNanoseconds: $0.waitNanoseconds)
                },
                clock: clock)
        }
        guard let after else { fatalError("the blackout ended without its counters read") }
        let window = after.clock - start
        let callerAfter = after.caller
        let lost = after.lost &- lostBefore
        let stealAfter = after.steal
        let helperAfter = after.helper
        let helperCountersAfter = after.helperCounters
        let others = SchedulerCounters.runNanoseconds(from: othersBefore, to: after.others)
        let otherTaskRun = SchedulerCounters.runNanoseconds(from: otherTasksBefore, to: after.otherTasks)
        machine.stopTracking()

        // The same frames again, their lines out of every cache as before the first copy: what
        // the copy takes when only the memory's state in the host differs.
        let finalList = UnsafeBufferPointer(rebasing: frameList[0..<record.finalFrames])
        for frame in finalList {
            let offset = Int(frame) * 4096
            mirrord_flush_caches(machine.active.base + offset, 4096)
            mirrord_flush_caches(machine.spare.base + offset, 4096)
        }
        // The floor beside it: as many other random frames (read of late, as the sample's were),
        // one thread, plain memcpy, nothing running.
        let count = min(record.finalFrames, Self.floorCapacity)
        for i in 0..<count {
            let frame = scaled(random.next(), frameCount)
            Self.touch(machine, frame: frame)
            floorOffsets[i] = frame * 4096
        }
        _ = try machine.enterBlackout()
        let againStart = MonotonicClock.nanoseconds()
        machine.copyToSpare(frameList: finalList)
        let again = MonotonicClock.nanoseconds() - againStart
        let floorStart = MonotonicClock.nanoseconds()
        for offset in floorOffsets[0..<count] {
            memcpy(machine.spare.base + offset, machine.active.base + offset, 4096)
        }
        let floorNanoseconds = MonotonicClock.nanoseconds() - floorStart
        machine.leaveBlackout()
        usleep(Self.pauseMicroseconds)

        let shared = helperAfter != nil && helperAfter?.jobsPosted != helperBefore?.jobsPosted
        return RawSample(
            target: target, record: record, floorFrameNanoseconds: Double(floorNanoseconds) / Double(max(1, count)),
            again: again, window: window, othersRun: others.sum,
            busiestOther: others.most.map {
                (SchedulerCounters.threadName($0.thread) ?? "\($0.thread)", $0.nanoseconds)
            },
            busiestSystemTask: otherTaskRun.most.map { (otherTasks[$0.thread] ?? "\($0.thread)", $0.nanoseconds) },
            caller: callerAfter.flatMap { after in
                callerBefore.map {
                    after.since(SchedulerCounters(runNanoseconds: callerCPUBefore, waitNanoseconds: $0.waitNanoseconds))
                }
            },
            helper: helperCountersAfter.flatMap { after in helperCountersBefore.map { after.since($0) } },
            helperShared: shared, helperWake: shared ? helperAfter?.lastWakeNanoseconds : nil, helperLost: lost,
            steal: stealAfter.flatMap { after in stealBefore.map { after &- $0 } })
    }

    /// Reads a byte of `frame` in the active module: a frame the CPUs or DMA just wrote is in the
    /// host's memory, not one it took back after a while unused (which costs a fault in the host,
    /// tens of microseconds to milliseconds, at its next touch; see docs/performance.md).
    private static func touch(_ machine: EmulatedMachine, frame: Int) {
        blackHole(machine.active.base.load(fromByteOffset: frame * 4096, as: UInt8.self))
    }

    /// The counters read at a blackout's end, before the writers run again.
    private struct After {
        var others: [Int32: SchedulerCounters]
        var otherTasks: [String: SchedulerCounters]
        var lost: UInt64
        var steal: UInt64?
        var helper: CopyHelperSnapshot?
        var helperCounters: SchedulerCounters?
        var caller: SchedulerCounters?
        var clock: UInt64
    }

    /// The samples with their floors: each one's per-frame cost the median of its neighbours'
    /// (``floorNeighbours`` either side, of the same size).
    private func floored(_ raw: [RawSample]) -> [TailSample] {
        var samples: [TailSample] = []
        for target in Self.targetFrames {
            let ofSize = raw.filter { $0.target == target }
            for (i, sample) in ofSize.enumerated() {
                let window = ofSize[max(0, i - Self.floorNeighbours)..<min(ofSize.count, i + Self.floorNeighbours + 1)]
                let perFrame = MachineBenchmarks.median(window.map(\.floorFrameNanoseconds))
                samples.append(TailSample(sample, floorFrameNanoseconds: perFrame))
            }
        }
        return samples
    }
}

/// Keeps a value the optimiser would otherwise drop (a read made only for its side effect).
@_optimize(none)
private func blackHole<T>(_ value: T) {}
