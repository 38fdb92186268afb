extension DuplexRun {
    /// Dirty frames a probe lists at most: enough to measure the final harvest near convergence,
    /// few enough that a probe of a large dirty set stays a short pause.
    static let probeCapacity = 65_536

    /// The harvest-and-copy passes. Each pass harvests and copies the frames dirtied since the
    /// last, counts what is dirty now, and, with a short probe, predicts the blackout of that
    /// dirty set from the costs measured in this duplex. The passes end at the target, the
    /// threshold, the pass limit, a stall the throttle cannot help, or the deadline; until then,
    /// a pass that does not converge slows the CPUs as the convergence policy says.
    mutating func passes() throws -> PassEndReason {
        enter(.passes)
        var previousDirty: Int?
        var previousRemaining: Int?
        var throttleChangedLastPass = false
        var lastHarvest = trackingStartNanos
        var pass = 0
        var deadlineReached = false
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
            if policy.blackoutTargetNanoseconds > 0 && (!model.isCalibrated || remaining <= Self.probeCapacity) {
                let probe = try runProbe()
                model.recordProbe(stop: probe.stop, harvest: probe.harvest, resume: probe.resume)
            }
            let target = policy.blackoutTargetNanoseconds
            if target > 0 && model.stopNanoseconds > target { summary.convergence.stopExceedsTarget = true }
            let predicted = model.isCalibrated ? model.predict(frames: remaining) : nil
            let dirtyRate = sinceLast == 0 ? 0 : Double(dirty) * 1e9 / Double(sinceLast)
            convergence.measure(hardware: hardware, now: passEnd, passDirtyRate: dirtyRate)
            let record = DuplexSummary.Pass(
                pass: pass, dirtyFrames: dirty, copiedFrames: dirty, durationMicroseconds: (passEnd &- start) / 1_000,
                dirtyRateFramesPerSecond: dirtyRate, remainingDirtyFrames: remaining,
                predictedBlackoutMicroseconds: predicted.map { $0 / 1_000 }, cpuThrottlePercent: throttleDuringPass)
            summary.passes.append(record)
            observer(.passCompleted(record, thresholdFrames: policy.thresholdFrames, targetMicroseconds: policy.blackoutTargetNanoseconds / 1_000))

            // A stall: the pass did not shrink the dirty set by min_progress. Without convergence
            // control that ends the passes; with it, only once the throttle is as high as it goes
            // and has been in force for a whole pass (a throttle acts on the pass after it is set).
            let shrankTooLittle = { (now: Int, before: Int?) in
                before.map { policy.minProgress > 0 && Double(now) > Double($0) * (1 - policy.minProgress) } ?? false
            }
            let stalled = policy.convergence == .none || hardware.cpuCount == 0
                ? shrankTooLittle(dirty, previousDirty)
                : convergence.saturated && !throttleChangedLastPass && shrankTooLittle(remaining, previousRemaining)
            let reason: PassEndReason?
            if deadlineReached {
                reason = .deadline
            } else if target > 0, let predicted, predicted <= target {
                reason = .target
            } else if remaining <= policy.thresholdFrames {
                reason = .threshold
            } else if pass >= policy.maxPasses {
                reason = .maxPasses
            } else if stalled {
                reason = .stalled
            } else {
                reason = nil
            }
            if let reason {
                summary.passEndReason = reason
                observer(.passesEnded(reason, dirtyFrames: remaining, predictedBlackoutMicroseconds: predicted.map { $0 / 1_000 }))
                return reason
            }
            throttleChangedLastPass = false
            if policy.maxDurationNanoseconds > 0 && passEnd &- trackingStartNanos >= policy.maxDurationNanoseconds {
                // The deadline: the maximum throttle, and the blackout after one more pass.
                deadlineReached = true
                summary.convergence.deadlineReached = true
                throttleChangedLastPass = convergence.setAll(policy.throttleMaximum)
                applyThrottle(reason: "duplex.max_duration passed after \(pass) passes: maximum throttle, blackout after the next pass")
            } else if convergence.adjust(
                policy: policy, dirty: dirty, previousDirty: previousDirty, remaining: remaining,
                frameBudget: target > 0 ? model.frameBudget(target: target) : policy.thresholdFrames,
                passOverhead: Double(harvestNanos), copyPerFrame: { [model] in model.copyNanosecondsPerFrame(frames: $0) })
            {
                throttleChangedLastPass = true
                let predictedText = predicted.map { "predicted blackout \($0 / 1_000) µs" } ?? "no prediction yet"
                applyThrottle(reason: "pass \(pass): \(predictedText) against a target of \(target / 1_000) µs, "
                    + "\(dirty) dirty frames after \(previousDirty.map(String.init) ?? "the full copy")")
            }
            previousDirty = dirty
            previousRemaining = remaining
        }
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
                hardware.copyToSpare(frameList: UnsafeBufferPointer(rebasing: output[0..<result.reported]))
                copyNanos += clock.nanoseconds() &- copyStart
            }
            dirty += result.reported
            scan = result.scanEnd
        }
        return (dirty, harvestNanos, copyNanos)
    }

    /// A probe of the current dirty set (see ``BlackoutModel``).
    private func runProbe() throws -> (stop: UInt64, harvest: UInt64, resume: UInt64, dirty: Int) {
        do {
            return try engine.probe(into: UnsafeMutableBufferPointer(rebasing: frameList[0..<min(Self.probeCapacity, frameList.count)]))
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "\(error)")
        }
    }

    /// Puts the controller's throttles in force on the hardware and reports them.
    private mutating func applyThrottle(reason: String) {
        let first = !convergence.isEngaged ? false : convergence.engagedAt == nil
        for (cpu, fraction) in convergence.throttle.enumerated() { hardware.setThrottle(cpu: cpu, fraction: fraction) }
        convergence.account(now: clock.nanoseconds())
        observer(.throttleChanged(cpuPercent: convergence.throttle.map { $0 * 100 }, engaged: first, reason: reason))
    }
}
