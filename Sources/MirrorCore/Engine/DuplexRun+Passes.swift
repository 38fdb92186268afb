/// How the passes ended: why, the blackout predicted, and the blackout itself when a probe that
/// found the dirty set small enough went on to the final copy.
struct PassesEnd {
    var reason: PassEndReason
    var predictedMicroseconds: UInt64?
    var blackout: BlackoutOutcome?
}

extension DuplexRun {
    /// Dirty frames a probe lists at most: enough to see the dirty set near convergence, few
    /// enough that a probe of a large dirty set stays a short pause.
    static let probeCapacity = 65_536
    /// How far over the target a blackout may be predicted and still be taken because the threshold
    /// was reached.
    static let thresholdOvershoot = 1.5
    /// How many times a threshold blackout predicted far over the target is put off to the next
    /// pass before the threshold ends the passes anyway.
    static let thresholdRetryLimit = 3

    /// The harvest-and-copy passes. Each pass harvests and copies the frames dirtied since the
    /// last and counts what is dirty now. With a blackout target, a pass that leaves few enough
    /// dirty frames ends in a blackout that first looks at the dirty set (see
    /// ``lookAtDirtySet(target:thresholdFrames:forced:fallback:)``): if its predicted final copy
    /// fits the target (or the passes must end anyway) the same blackout carries on to the final
    /// copy; if not, it ends as a probe. The passes also end at the threshold (with a target, met
    /// both by the count and at the stop), the pass limit, a stall the throttle cannot help, or
    /// the deadline; until then a pass that does not converge slows the CPUs as the convergence
    /// policy says.
    mutating func passes() throws -> PassesEnd {
        enter(.passes)
        var previousDirty: Int?
        var previousRemaining: Int?
        var throttleChangedLastPass = false
        var deadlineReached = false
        var lastHarvest = trackingStartNanos
        var pass = 0
        while true {
            try checkStop()
            let policy = engine.policy
            summary.thresholdFrames = policy.thresholdFrames
            pass += 1
            let throttleDuringPass = convergence.throttle.map { $0 * 100 }
            let start = clock.nanoseconds()
            let sinceLast = start &- lastHarvest
            lastHarvest = start
            let (dirty, harvestNanos, copyNanos) = try harvestAndCopy(batch: policy.harvestBatchFrames)
            model.recordCopy(frames: dirty, nanoseconds: copyNanos)
            let remaining = hardware.dirtyFrameCount
            let passEnd = clock.nanoseconds()
            let dirtyRate = sinceLast == 0 ? 0 : Double(dirty) * 1e9 / Double(sinceLast)
            convergence.measure(hardware: hardware, now: passEnd, passDirtyRate: dirtyRate)

            // The ends that do not need a look at the dirty set.
            let stalled =
                policy.convergence == .none || hardware.cpuCount == 0
                ? shrankTooLittle(dirty, previousDirty, policy)
                : convergence.saturated && !throttleChangedLastPass
                    && shrankTooLittle(remaining, previousRemaining, policy)
            // The pass limit and a stall; also what ends the passes if the threshold, met by the
            // count, is not met at the stop.
            let fallback: PassEndReason? = pass >= policy.maxPasses ? .maxPasses : stalled ? .stalled : nil
            var forced = deadlineReached ? .deadline : remaining <= policy.thresholdFrames ? .threshold : fallback

            let target = policy.blackoutTargetNanoseconds
            var predicted: UInt64?
            // A dirty set too large for a probe is looked at only before the model has a sample,
            // or when the passes end anyway: the look is then the final blackout's own listing of
            // the dirty frames, and its prediction is made like any other, from a sample copied first.
            let ending = forced?.takesBlackoutWhateverFound ?? false
            if target > 0 && (remaining <= Self.probeCapacity || !model.isCalibrated || ending) {
                let look = try lookAtDirtySet(
                    target: target, thresholdFrames: policy.thresholdFrames, forced: forced, fallback: fallback)
                predicted = look.predicted
                if let end = look.end {
                    record(
                        pass: pass, start: start, passEnd: passEnd, dirty: dirty, rate: dirtyRate, remaining: remaining,
                        predicted: predicted, throttle: throttleDuringPass, policy: policy)
                    return finishPasses(end)
                }
                // Every forced end but the threshold ended in the look; the threshold did not,
                // because the look found more dirty frames than it (and neither the pass limit nor
                // a stall applied), or a blackout predicted far over the target: try again.
                forced = nil
            } else {
                predicted = model.isCalibrated ? model.predict(frames: remaining) : nil
            }
            record(
                pass: pass, start: start, passEnd: passEnd, dirty: dirty, rate: dirtyRate, remaining: remaining,
                predicted: predicted, throttle: throttleDuringPass, policy: policy)
            if let forced {
                return finishPasses(PassesEnd(reason: forced, predictedMicroseconds: predicted.map { $0 / 1_000 }))
            }

            throttleChangedLastPass = false
            if policy.maxDurationNanoseconds > 0 && passEnd &- trackingStartNanos >= policy.maxDurationNanoseconds {
                // The deadline: the maximum throttle (none under `none`, which never slows the
                // CPUs), and the blackout after one more pass.
                deadlineReached = true
                summary.convergence.deadlineReached = true
                if policy.convergence != .none {
                    throttleChangedLastPass = convergence.setAll(policy.throttleMaximum)
                    applyThrottle(
                        reason:
                            "duplex.max_duration passed after \(pass) passes: maximum throttle, blackout after the next pass"
                    )
                }
            } else if convergence.adjust(
                policy: policy, dirty: dirty, previousDirty: previousDirty, remaining: remaining,
                frameBudget: convergenceBudget(target: target, policy: policy),
                passOverhead: Double(harvestNanos),
                copyPerFrame: passCopyPerFrame)
            {
                throttleChangedLastPass = true
                let predictedText = predicted.map { "predicted blackout \($0 / 1_000) µs" } ?? "no prediction yet"
                applyThrottle(
                    reason: "pass \(pass): \(predictedText) against a target of \(target / 1_000) µs, "
                        + "\(dirty) dirty frames after \(previousDirty.map(String.init) ?? "the full copy")")
            }
            previousDirty = dirty
            previousRemaining = remaining
        }
    }

    /// The frames the convergence control lets the CPUs leave dirty for the blackout: what the
    /// target lets it copy (or the threshold), and with a spare on another host no more than
    /// half an epoch's staging, so that the final frames fit the first epoch.
    private func convergenceBudget(target: UInt64, policy: DuplexPolicy) -> Int {
        let budget = target > 0 ? model.frameBudget(target: target) : policy.thresholdFrames
        guard let remote else { return budget }
        return min(budget, remote.capacity / 2)
    }

    /// What the next pass costs a frame: a copy to the module like the blackout's, or, with a
    /// spare on another host, a write over the link as the last pass measured (the blackout's
    /// own copy goes to the staging area, at memory speed).
    private var passCopyPerFrame: (Int) -> Double {
        let model = self.model
        if remote != nil && model.passNanosecondsPerFrame > 0 { return { _ in model.passNanosecondsPerFrame } }
        return { model.copyNanosecondsPerFrame(frames: $0) }
    }

    /// Whether a pass shrank the dirty set by less than `duplex.min_progress`.
    private func shrankTooLittle(_ now: Int, _ before: Int?, _ policy: DuplexPolicy) -> Bool {
        before.map { policy.minProgress > 0 && Double(now) > Double($0) * (1 - policy.minProgress) } ?? false
    }

    /// The blackout that looks at the dirty set (see ``BlackoutSession``): it lists the dirty
    /// frames (up to ``probeCapacity``, unless it goes on whatever it finds: then all of them),
    /// copies a sample of them first where the list allows
    /// (``BlackoutModel/sampling(dirty:ending:limit:)``), and carries on to the final copy when the
    /// predicted blackout fits `target` or the passes end anyway (`forced`; a threshold the look
    /// finds exceeded gives way to `fallback`); otherwise it copies a sample if it has not, and
    /// resumes. Returns the prediction (for the whole blackout, final harvest included) and, when
    /// the passes ended, how.
    private mutating func lookAtDirtySet(
        target: UInt64, thresholdFrames: Int, forced: PassEndReason?, fallback: PassEndReason?
    ) throws
        -> (predicted: UInt64?, end: PassesEnd?)
    {
        // A fault raised with the CPUs stopped for this look struck in a blackout.
        engine.stopToken.enter(.blackout)
        defer { engine.stopToken.enter(state) }
        do {
            let session = try BlackoutSession(hardware: hardware, clock: clock)
            // A blackout that goes on whatever it finds (a threshold that gives way to the pass
            // limit or a stall too) lists every dirty frame: the final copy needs them all, and the
            // prediction counts them all.
            let goesOnAnyway =
                (forced?.takesBlackoutWhateverFound ?? false) || (forced == .threshold && fallback != nil)
            let capacity = goesOnAnyway ? frameList.count : min(Self.probeCapacity, frameList.count)
            let probeList = UnsafeMutableBufferPointer(rebasing: frameList[0..<capacity])
            let look = try session.look(into: probeList)
            model.recordLook(stop: session.stopNanoseconds, harvest: look.nanoseconds)
            // This blackout has stopped the CPUs and listed the dirty set: what is left is the copy
            // (and the final harvest, when the list is incomplete) and the resume. A sample copied
            // now measures this blackout's own copy, and is part of the final copy if it follows.
            let list = UnsafeBufferPointer(rebasing: probeList[0..<look.dirty])
            // The threshold counts the frames this blackout would copy: the count it was met on
            // was taken before this stop, and CPUs that kept writing until stopped can have
            // dirtied many more since (an incomplete list holds more than any threshold it could
            // tell apart). Missed, it gives way to the pass limit or a stall, if either applies.
            var forced = forced
            if forced == .threshold && look.dirty > thresholdFrames { forced = fallback }
            // Every forced end but the threshold (which may be put off, below) ends here.
            let ending = forced?.takesBlackoutWhateverFound ?? false
            let sampling = BlackoutModel.sampling(dirty: look.dirty, ending: ending, limit: candidates.count)
            let copiedFirst =
                sampling.beforeDecision && look.complete
                ? copySample(of: list, frames: sampling.frames, in: session) : BlackoutSession.CopiedFirst()
            var predicted: UInt64?
            if model.isCalibrated {
                predicted =
                    session.elapsed + (look.complete ? 0 : look.nanoseconds)
                    + model.predictCopyAndResume(frames: look.dirty - copiedFirst.frames)
            }
            // With a spare on another host the final frames must also fit the first epoch (all of
            // them listed: an incomplete look says nothing of how many there are).
            let fits =
                (predicted.map { $0 <= target } ?? false)
                && (remote == nil || (look.complete && look.dirty <= remote!.capacity))
            // The threshold does not end the passes, at first, into a blackout predicted far over
            // the target (a stop that took long on a busy host, a slow copy, the harvest of a large
            // memory): that one ends as a probe and the next pass tries again, the convergence
            // policy slowing the CPUs further; after a few tries the threshold ends them. The pass
            // limit, a stall and the deadline always end.
            let farOver = predicted.map { Double($0) > Double(target) * Self.thresholdOvershoot } ?? false
            let retry = forced == .threshold && farOver && thresholdRetries < Self.thresholdRetryLimit
            if retry { thresholdRetries += 1 }
            let mustEnd = forced != nil && !retry
            if fits || mustEnd {
                if copiedFirst.frames > 0 {
                    moveToEnd(
                        sample: UnsafeBufferPointer(rebasing: candidates[0..<copiedFirst.frames]),
                        of: UnsafeMutableBufferPointer(rebasing: probeList[0..<look.dirty]))
                }
                let outcome = try session.finish(
                    frameList: frameList, mismatches: candidates,
                    verifyInBlackout: remote == nil && engine.policy.verifyFinalFramesInBlackout,
                    enterLockstep: remote == nil, look: look, copiedFirst: copiedFirst, stage: stageFirstEpoch)
                let reason = fits ? PassEndReason.target : forced!
                return (
                    predicted,
                    PassesEnd(reason: reason, predictedMicroseconds: predicted.map { $0 / 1_000 }, blackout: outcome)
                )
            }
            if copiedFirst.frames == 0 && sampling.frames >= BlackoutModel.minimumSample {
                _ = copySample(of: list, frames: sampling.frames, in: session)
            }
            session.resume()
            return (model.predict(frames: look.dirty), nil)
        } catch {
            throw blackoutFailure(error)
        }
    }

    /// Copies a sample of `frames` frames of `list` (see
    /// ``BlackoutModel/takeSample(of:frames:into:)``) in `session` and records its cost in the
    /// model, less what was taken from it (its threads off their CPUs); returns what it copied
    /// and how long that took.
    private mutating func copySample(
        of list: UnsafeBufferPointer<UInt32>, frames: Int, in session: borrowing BlackoutSession
    )
        -> BlackoutSession.CopiedFirst
    {
        let taken = BlackoutModel.takeSample(of: list, frames: frames, into: candidates)
        let copy = session.copy(sample: UnsafeBufferPointer(rebasing: candidates[0..<taken]))
        model.recordSample(frames: taken, nanoseconds: copy.onCPUNanoseconds)
        return BlackoutSession.CopiedFirst(frames: taken, nanoseconds: copy.nanoseconds)
    }

    /// Reorders `list` (ascending) so that the frames of `sample` (ascending, all in the list) come
    /// last, the others first in their order: the final copy then copies the first part only.
    private func moveToEnd(sample: UnsafeBufferPointer<UInt32>, of list: UnsafeMutableBufferPointer<UInt32>) {
        var kept = 0
        var next = 0
        for i in 0..<list.count {
            let frame = list[i]
            if next < sample.count && sample[next] == frame {
                next += 1
            } else {
                list[kept] = frame
                kept += 1
            }
        }
        for i in 0..<sample.count { list[kept + i] = sample[i] }
    }

    /// Records a pass and reports it.
    private mutating func record(
        pass: Int, start: UInt64, passEnd: UInt64, dirty: Int, rate: Double, remaining: Int, predicted: UInt64?,
        throttle: [Double], policy: DuplexPolicy
    ) {
        let record = DuplexSummary.Pass(
            pass: pass, dirtyFrames: dirty, copiedFrames: dirty, durationMicroseconds: (passEnd &- start) / 1_000,
            dirtyRateFramesPerSecond: rate, remainingDirtyFrames: remaining,
            predictedBlackoutMicroseconds: predicted.map { $0 / 1_000 }, cpuThrottlePercent: throttle)
        summary.passes.append(record)
        observer(
            .passCompleted(
                record, thresholdFrames: policy.thresholdFrames,
                targetMicroseconds: policy.blackoutTargetNanoseconds / 1_000))
    }

    /// Ends the passes with `end` and reports it.
    private mutating func finishPasses(_ end: PassesEnd) -> PassesEnd {
        summary.passEndReason = end.reason
        let dirty = end.blackout?.record.finalFrames ?? summary.passes.last?.remainingDirtyFrames ?? 0
        observer(.passesEnded(end.reason, dirtyFrames: dirty, predictedBlackoutMicroseconds: end.predictedMicroseconds))
        return end
    }

    /// One pass's harvest of every frame in batches, each batch copied as it comes. Returns the
    /// frames harvested and the nanoseconds spent harvesting and copying.
    private func harvestAndCopy(batch: Int) throws -> (dirty: Int, harvest: UInt64, copy: UInt64) {
        let capacity = max(1, min(batch, frameList.count))
        let output = UnsafeMutableBufferPointer(rebasing: frameList[0..<capacity])
        var dirty = 0
        var scan = 0
        var harvestNanos: UInt64 = 0
        var copyNanos: UInt64 = 0
        while scan < geometry.frameCount {
            let harvestStart = clock.nanoseconds()
            let result = try harvest(scan..<geometry.frameCount, into: output)
            let copyStart = clock.nanoseconds()
            harvestNanos += copyStart &- harvestStart
            if result.reported > 0 {
                let list = UnsafeBufferPointer(rebasing: output[0..<result.reported])
                if let remote, let activeMemory {
                    try spareCall("pass") { () throws(SpareStoreError) in
                        try remote.store.write(frameList: list, of: activeMemory)
                    }
                } else {
                    hardware.copyToSpare(frameList: list)
                }
                copyNanos += clock.nanoseconds() &- copyStart
            }
            dirty += result.reported
            scan = result.scanEnd
        }
        return (dirty, harvestNanos, copyNanos)
    }

    /// Puts the controller's throttles in force on the hardware and reports them.
    private mutating func applyThrottle(reason: String) {
        let first = convergence.isEngaged && convergence.engagedAt == nil
        for (cpu, fraction) in convergence.throttle.enumerated() { hardware.setThrottle(cpu: cpu, fraction: fraction) }
        convergence.account(now: clock.nanoseconds())
        observer(.throttleChanged(cpuPercent: convergence.throttle.map { $0 * 100 }, engaged: first, reason: reason))
    }
}
