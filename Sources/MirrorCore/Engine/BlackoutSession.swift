/// One blackout, from the stop of every writer to their resume.
///
/// It begins as a look at the dirty set: a get-only harvest of every frame, which clears nothing,
/// and, where the list allows (``BlackoutModel/sampling(dirty:ending:limit:)``), the copy of a
/// sample of the dirty frames to measure the copy of a frame. If what it finds fits the blackout
/// target (or the passes must end anyway), the same blackout goes on to the final copy, so no
/// frame is dirtied between the decision and the copy; if not, it copies a sample if it has not
/// and ends (a *probe*), and the frames it copied stay dirty.
struct BlackoutSession: ~Copyable {
    let hardware: any DuplexHardware
    let clock: any EngineClock
    /// When the stop was asked for.
    let start: UInt64
    /// How long every writer took to stop.
    let stopNanoseconds: UInt64
    /// This thread's CPU time when the stop was asked for. Once every writer has stopped the thread
    /// runs without waiting for anything, so any time after the stop that it did not run was taken
    /// from it (the stop itself may sleep while writers reach their checkpoints).
    private let startCPU: UInt64
    /// The hardware's copying threads' time off their CPUs when the stop was asked for.
    private let startCopyThreadsOffCPU: UInt64
    private var ended = false

    /// Stops every writer.
    init(hardware: any DuplexHardware, clock: any EngineClock) throws(HardwareError) {
        self.hardware = hardware
        self.clock = clock
        startCPU = clock.threadCPUNanoseconds()
        startCopyThreadsOffCPU = hardware.copyThreadsOffCPUNanoseconds
        start = clock.nanoseconds()
        stopNanoseconds = try hardware.enterBlackout()
    }

    deinit {
        if !ended { hardware.leaveBlackout() }
    }

    /// Nanoseconds since the stop was asked for.
    var elapsed: UInt64 { clock.nanoseconds() &- start }

    /// What a look at the dirty set found.
    struct Look {
        /// The dirty frames listed.
        var dirty: Int
        /// Whether the list holds every dirty frame (the output did not fill).
        var complete: Bool
        /// How long the harvest took.
        var nanoseconds: UInt64
    }

    /// Lists the dirty frames into `frameList` without clearing them.
    func look(into frameList: UnsafeMutableBufferPointer<UInt32>) throws(HardwareError) -> Look {
        let harvestStart = clock.nanoseconds()
        do {
            let seen = try hardware.harvest(frames: hardware.geometry.allFrames, flags: .get, into: frameList)
            return Look(
                dirty: seen.reported, complete: seen.scanEnd == hardware.geometry.frameCount,
                nanoseconds: clock.nanoseconds() &- harvestStart)
        } catch {
            throw HardwareError(.trackingFailed, operation: "probe harvest", message: "\(error)")
        }
    }

    /// Frames at the end of a look's list that were copied in this blackout before the decision to
    /// finish it, and how long they took.
    struct CopiedFirst {
        var frames = 0
        var nanoseconds: UInt64 = 0
    }

    /// A sample's copy: how long it took, and how much of that was taken from it.
    struct SampleCopy {
        var nanoseconds: UInt64
        /// What the copy lost to its threads being off their CPUs (see ``copy(sample:)``).
        var lostNanoseconds: UInt64
        /// What the copy would have taken with its threads on their CPUs throughout: what the
        /// rest of the list is predicted from.
        var onCPUNanoseconds: UInt64 { nanoseconds - lostNanoseconds }
    }

    /// Time off the CPU in a sample's copy below which it is not taken from the sample: the
    /// kernel's own interrupts and the clock readings' jitter (a few tens of microseconds in the
    /// bench's copies, on every copy alike); above it the host or another thread took the core
    /// for a stretch, which the rest of the list need not meet.
    static let offCPUNoiseNanoseconds: UInt64 = 50_000

    /// Copies `sample` (frames taken from the dirty list; they stay dirty); returns how long it
    /// took and how much of that was lost to the host or another thread: all of the time this
    /// thread was off its CPU in a one-thread copy, the share the other thread could not make up
    /// in a split one (``BlackoutModel/splitSpeedup``), and any wait for the copying thread while
    /// that was off its own. An interrupted sample would otherwise predict the rest of the list
    /// at the interrupted pace; what is taken from the rest shows in the blackout's `off_cpu_us`.
    func copy(sample: UnsafeBufferPointer<UInt32>) -> SampleCopy {
        let startCPU = clock.threadCPUNanoseconds()
        let startCopyThreadsOff = hardware.copyThreadsOffCPUNanoseconds
        let copyStart = clock.nanoseconds()
        hardware.copyToSpare(frameList: sample)
        let took = clock.nanoseconds() &- copyStart
        let ran = clock.threadCPUNanoseconds() &- startCPU
        let off = took > ran && took - ran >= Self.offCPUNoiseNanoseconds ? took - ran : 0
        let unmadeShare = sample.count >= BlackoutModel.splitFrames ? 1 - 1 / BlackoutModel.splitSpeedup : 1
        let lost = UInt64(Double(off) * unmadeShare) + (hardware.copyThreadsOffCPUNanoseconds &- startCopyThreadsOff)
        return SampleCopy(nanoseconds: took, lostNanoseconds: min(lost, took))
    }

    /// Ends the blackout without a final copy (a probe). The writers are let go at once; what
    /// the resume costs inside a final blackout (lockstep on, throttles lifted) is measured there.
    consuming func resume() {
        hardware.leaveBlackout()
        ended = true
    }

    /// The final copy: harvests every remaining dirty frame in one call (nothing writes now), or
    /// takes the complete list a `look` already made in this blackout (tracking ends with the
    /// blackout, so nothing needs clearing; the frames `copiedFirst` says are at its end and are
    /// not copied again), copies them, optionally compares them, switches lockstep on (unless the
    /// comparison failed or `enterLockstep` is false), lifts every throttle, resumes. Its length
    /// depends on the frames left dirty, not on the size of memory. With `stage` (a spare on
    /// another host) the final frames go to it instead of the spare module (into the staging
    /// area); if it throws, the blackout ends and so does the duplex. `beforeResume` runs once
    /// the blackout's end is taken, with the writers still stopped (outside its duration).
    consuming func finish(
        frameList: UnsafeMutableBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>,
        verifyInBlackout: Bool, enterLockstep: Bool, look: Look? = nil, copiedFirst: CopiedFirst = CopiedFirst(),
        stage: ((UnsafeBufferPointer<UInt32>) throws -> Void)? = nil, beforeResume: (() -> Void)? = nil
    ) throws(HardwareError) -> BlackoutOutcome {
        let listed: Int
        let harvestNanos: UInt64
        var copied = CopiedFirst()
        if let look, look.complete, enterLockstep {
            listed = look.dirty
            harvestNanos = look.nanoseconds
            copied = copiedFirst
        } else {
            let harvestStart = clock.nanoseconds()
            do {
                listed = try hardware.harvest(frames: hardware.geometry.allFrames, flags: .getAndClear, into: frameList)
                    .reported
            } catch {
                throw HardwareError(.trackingFailed, operation: "final harvest", message: "\(error)")
            }
            harvestNanos = clock.nanoseconds() &- harvestStart
        }
        let finalFrames = UnsafeBufferPointer(rebasing: frameList[0..<listed])
        let copyStart = clock.nanoseconds()
        if let stage {
            // Every frame listed (a re-harvest, so nothing the look sampled is left out).
            do {
                try stage(finalFrames)
            } catch {
                hardware.leaveBlackout()
                ended = true
                throw HardwareError(.resources, operation: "stage the final frames", message: "\(error)")
            }
        } else if listed > copied.frames {  // nothing left when the look copied the whole (short) list
            hardware.copyToSpare(frameList: UnsafeBufferPointer(rebasing: finalFrames[0..<(listed - copied.frames)]))
        }
        let copyNanos = clock.nanoseconds() &- copyStart + copied.nanoseconds
        var check = VerifyResult()
        var verifyNanos: UInt64 = 0
        if verifyInBlackout {
            let verifyStart = clock.nanoseconds()
            check = hardware.verify(frameList: finalFrames, mismatches: mismatches)
            verifyNanos = clock.nanoseconds() &- verifyStart
        }
        let lockstep = check.mismatches == 0 && enterLockstep
        let resumeStart = clock.nanoseconds()
        if lockstep { hardware.setLockstep(true) }
        for cpu in 0..<hardware.cpuCount { hardware.setThrottle(cpu: cpu, fraction: 0) }
        // The blackout ends when the writers are let go; if waking them costs this thread its core
        // for a while, the writers run meanwhile and it is no part of the blackout.
        let end = clock.nanoseconds()
        let ran = clock.threadCPUNanoseconds() &- startCPU
        beforeResume?()
        hardware.leaveBlackout()
        ended = true
        let lasted = end &- start
        let duration = lasted / 1_000
        // Tracking is no longer needed in lockstep; switching it off (for the real MMU, removing
        // the write-protection of every page) is done with the CPUs running again.
        if lockstep { hardware.stopTracking() }
        var record = DuplexSummary.Blackout(
            durationMicroseconds: duration,
            stopMicroseconds: stopNanoseconds / 1_000, finalFrames: listed,
            finalCopyMicroseconds: copyNanos / 1_000, verifyMicroseconds: verifyNanos / 1_000)
        record.finalHarvestMicroseconds = harvestNanos / 1_000
        record.resumeMicroseconds = (end &- resumeStart) / 1_000
        // Off the CPU in the whole blackout, less the stop (whatever part of it was spent asleep),
        // and the copying threads' time off theirs mid-copy (the caller waited for them): what
        // the host or another thread took from the blackout, never more than it lasted past the stop.
        let beyondStop = lasted > stopNanoseconds ? lasted - stopNanoseconds : 0
        let offAfterStop = beyondStop > ran ? beyondStop - ran : 0
        let copyThreadsOff = hardware.copyThreadsOffCPUNanoseconds &- startCopyThreadsOffCPU
        record.offCPUMicroseconds = min(offAfterStop + copyThreadsOff, beyondStop) / 1_000
        return BlackoutOutcome(record: record, check: check)
    }
}

/// What one blackout did: its record, and the comparison of the final frames (empty when they
/// are compared after the blackout instead).
struct BlackoutOutcome {
    var record: DuplexSummary.Blackout
    var check: VerifyResult
}
