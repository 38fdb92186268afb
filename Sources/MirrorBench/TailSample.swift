import MirrorCore

/// One blackout of `bench --only tail` against its floor, and where its time went: the engine's
/// phases, each copying thread's time on its CPU and waiting for one, what the host took, and the
/// helper's wake-up. A JSON row of the report.
struct TailSample: Encodable {
    /// A sample whose ratio to its floor is over this is attributed: the p99.9 bound (1.5x), so
    /// that both bounds (p99.9 <= 1.5, max <= 2.0) can be checked against the causes.
    static let attributedAbove = 1.5

    /// Where a blackout over ``attributedAbove`` times its floor lost the excess: when what the
    /// host, a run queue and the host's memory took together cover it, the largest of the three;
    /// else the first other explanation that covers it.
    enum Cause: String, Encodable {
        /// Not over ``TailSample/attributedAbove`` times its floor.
        case within
        /// The host, most likely: the engine's thread neither ran nor waited for a CPU of this
        /// machine (steal time, with this kernel's accounting; or a sleep, which the blackout's
        /// copy never takes), or waited for the helper while the helper's thread neither ran nor
        /// waited.
        case host
        /// Another thread of this machine held the engine's CPU or the helper's (their run
        /// delays), with what the host took.
        case runQueue = "run_queue"
        /// The copy took longer than the same frames copied again at once with the caches in
        /// the same state: the host had taken memory back and mapped it in again at the touch,
        /// on the copying thread's time (no steal, no fault in this kernel).
        case hostMemory = "host_memory"
        /// The plain `memcpy` beside it (its own floor, not its neighbours') was as slow, within
        /// the same bound: the memory was slow for every copy in that moment, with nothing of
        /// this machine running (another tenant of the host).
        case slowMemory = "slow_memory"
        /// The helper woke late.
        case helperWake = "helper_wake"
        /// Nothing the counters show: ours to find.
        case unattributed
    }

    /// The dirty frames marked before the stop (the workload adds a few of its own).
    let targetFrames: Int
    let finalFrames: Int
    let durationMicroseconds: UInt64
    let stopMicroseconds: UInt64
    let finalHarvestMicroseconds: UInt64
    let finalCopyMicroseconds: UInt64
    let resumeMicroseconds: UInt64
    /// The floor's per-frame copy (one thread, plain `memcpy`, random frames, the median of the
    /// floors beside this sample).
    let floorFrameMicroseconds: Double
    /// This sample's own floor copy, per frame (the neighbours' median is what counts).
    let ownFloorFrameMicroseconds: Double
    /// The stop plus the final frames at the floor's per-frame cost.
    let floorMicroseconds: Double
    let blackoutRatio: Double
    /// The engine's own count of what was taken from the blackout (``DuplexSummary/Blackout/offCPUMicroseconds``).
    let offCPUMicroseconds: UInt64
    /// The engine's thread over the sample's window: on its CPU, and waiting on a run queue.
    let callerRunMicroseconds: Double?
    let callerWaitMicroseconds: Double?
    /// The engine's thread's time neither running nor waiting beyond the stop (which may sleep):
    /// on this virtual machine, the host holding its vCPU.
    let callerHostMicroseconds: Double?
    /// Whether the final copy was shared with the helper, how long it took to take its part up,
    /// its thread's time on its CPU and waiting for one.
    let helperShared: Bool
    let helperWakeMicroseconds: Double?
    let helperRunMicroseconds: Double?
    let helperWaitMicroseconds: Double?
    /// The same final frames copied again right after by the same path, their lines flushed
    /// from the caches first.
    let againMicroseconds: Double
    /// The run time of this process's other threads in the window (the stopped CPUs, DMA): a run
    /// queue wait with these near zero was another process or a kernel thread.
    let othersRunMicroseconds: Double
    /// The one of them that ran most, and its run time.
    let busiestOther: String?
    let busiestOtherRunMicroseconds: Double?
    /// The task of another process (a kernel thread such as `kdamond`, the VM's agent, …) that
    /// ran most in the window, and its run time: what held the engine's core when that waited on
    /// a run queue with our own threads idle.
    let busiestSystemTask: String?
    let busiestSystemTaskRunMicroseconds: Double?
    /// How long the engine waited for the helper while the helper's thread was off its CPU.
    let helperLostMicroseconds: Double
    /// The host's steal time over every CPU in the sample's window (`/proc/stat`, 10 ms ticks).
    let stealMicroseconds: Double?
    let cause: Cause

    init(_ raw: TailBench.RawSample, floorFrameNanoseconds: Double) {
        let record = raw.record
        targetFrames = raw.target
        finalFrames = record.finalFrames
        durationMicroseconds = record.durationMicroseconds
        stopMicroseconds = record.stopMicroseconds
        finalHarvestMicroseconds = record.finalHarvestMicroseconds
        finalCopyMicroseconds = record.finalCopyMicroseconds
        resumeMicroseconds = record.resumeMicroseconds
        floorFrameMicroseconds = floorFrameNanoseconds / 1_000
        ownFloorFrameMicroseconds = raw.floorFrameNanoseconds / 1_000
        othersRunMicroseconds = Double(raw.othersRun) / 1_000
        busiestOther = raw.busiestOther?.name
        busiestOtherRunMicroseconds = raw.busiestOther.map { Double($0.nanoseconds) / 1_000 }
        busiestSystemTask = raw.busiestSystemTask?.name
        busiestSystemTaskRunMicroseconds = raw.busiestSystemTask.map { Double($0.nanoseconds) / 1_000 }
        floorMicroseconds = Double(record.stopMicroseconds) + Double(record.finalFrames) * floorFrameMicroseconds
        blackoutRatio = Double(record.durationMicroseconds) / max(1, floorMicroseconds)
        offCPUMicroseconds = record.offCPUMicroseconds
        callerRunMicroseconds = raw.caller.map { Double($0.runNanoseconds) / 1_000 }
        callerWaitMicroseconds = raw.caller.map { Double($0.waitNanoseconds) / 1_000 }
        callerHostMicroseconds = raw.caller.map { counters in
            let accounted = counters.runNanoseconds + counters.waitNanoseconds + record.stopMicroseconds * 1_000
            return raw.window > accounted ? Double(raw.window - accounted) / 1_000 : 0
        }
        helperShared = raw.helperShared
        helperWakeMicroseconds = raw.helperWake.map { Double($0) / 1_000 }
        helperRunMicroseconds = raw.helper.map { Double($0.runNanoseconds) / 1_000 }
        helperWaitMicroseconds = raw.helper.map { Double($0.waitNanoseconds) / 1_000 }
        helperLostMicroseconds = Double(raw.helperLost) / 1_000
        againMicroseconds = Double(raw.again) / 1_000
        stealMicroseconds = raw.steal.map { Double($0) / 1_000 }
        // The engine's wait for the helper while the helper was off its CPU: as far as the
        // helper's own run delay covers it, another thread held the helper's core; the rest the
        // host took.
        let helperQueued = min(helperLostMicroseconds, helperWaitMicroseconds ?? 0)
        // The engine's wait and its time neither running nor waiting count only as far as the
        // engine's own count says it was off its CPU inside the blackout (past the stop): the
        // counters' window opens before the stop, and a wait there took nothing from it.
        let callerOff = Double(record.offCPUMicroseconds)
        let callerWait = min(callerWaitMicroseconds ?? 0, callerOff)
        let callerHost = min(callerHostMicroseconds ?? 0, callerOff - callerWait)
        // The two threads may lose the same moment (both vCPUs taken, or the engine yielding
        // while it waits for a queued helper): the larger of the two, never the sum.
        let host = max(callerHost, helperLostMicroseconds - helperQueued)
        let queued = max(callerWait, helperQueued)
        // What copying the same frames again saved, less what the host or a run queue took inside
        // the copy (counted above already).
        let memory = max(0, Double(record.finalCopyMicroseconds) - againMicroseconds - host - queued)
        let excess = Double(record.durationMicroseconds) - Self.attributedAbove * floorMicroseconds
        if excess <= 0 {
            cause = .within
        } else if host + queued + memory >= excess {
            // The largest share names it.
            cause = host >= queued && host >= memory ? .host : queued >= memory ? .runQueue : .hostMemory
        } else if Double(record.durationMicroseconds)
            <= Self.attributedAbove
            * (Double(record.stopMicroseconds) + Double(record.finalFrames) * ownFloorFrameMicroseconds)
        {
            cause = .slowMemory
        } else if let wake = helperWakeMicroseconds, wake >= excess {
            cause = .helperWake
        } else {
            cause = .unattributed
        }
    }

    enum CodingKeys: String, CodingKey {
        case targetFrames = "target_frames"
        case finalFrames = "final_frames"
        case durationMicroseconds = "duration_us"
        case stopMicroseconds = "stop_us"
        case finalHarvestMicroseconds = "final_harvest_us"
        case finalCopyMicroseconds = "final_copy_us"
        case resumeMicroseconds = "resume_us"
        case floorFrameMicroseconds = "floor_frame_us"
        case floorMicroseconds = "floor_us"
        case ownFloorFrameMicroseconds = "own_floor_frame_us"
        case othersRunMicroseconds = "others_run_us"
        case busiestOther = "busiest_other"
        case busiestOtherRunMicroseconds = "busiest_other_run_us"
        case busiestSystemTask = "busiest_system_task"
        case busiestSystemTaskRunMicroseconds = "busiest_system_task_run_us"
        case blackoutRatio = "blackout_ratio"
        case offCPUMicroseconds = "off_cpu_us"
        case callerRunMicroseconds = "engine_run_us"
        case callerWaitMicroseconds = "engine_wait_us"
        case callerHostMicroseconds = "engine_host_us"
        case helperShared = "helper_shared"
        case helperWakeMicroseconds = "helper_wake_us"
        case helperRunMicroseconds = "helper_run_us"
        case helperWaitMicroseconds = "helper_wait_us"
        case helperLostMicroseconds = "helper_lost_us"
        case againMicroseconds = "again_us"
        case stealMicroseconds = "steal_us"
        case cause
    }
}
