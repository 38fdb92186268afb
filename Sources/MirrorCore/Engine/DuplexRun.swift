/// The mutable state of one duplex, alive for one ``DuplexEngine/run(observer:)`` call.
struct DuplexRun: ~Copyable {
    let hardware: any DuplexHardware
    let engine: DuplexEngine
    let observer: @Sendable (DuplexEvent) -> Void
    let geometry: MemoryGeometry
    var summary: DuplexSummary
    var state: DuplexState = .idle
    let startNanos: UInt64
    /// When tracking began: the first pass's dirty rate counts from here.
    var trackingStartNanos: UInt64 = 0
    /// Output vector of the harvests and of the final list; sized for every frame, so the
    /// blackout's harvest takes the whole dirty set in one call.
    let frameList: UnsafeMutableBufferPointer<UInt32>
    /// Output vector of the verify.
    let candidates: UnsafeMutableBufferPointer<UInt32>

    init(engine: DuplexEngine, observer: @escaping @Sendable (DuplexEvent) -> Void) {
        self.engine = engine
        self.hardware = engine.hardware
        self.observer = observer
        self.geometry = engine.hardware.geometry
        let policy = engine.policy
        self.summary = DuplexSummary(backend: hardware.backendName, geometry: geometry, thresholdFrames: policy.thresholdFrames)
        self.startNanos = MonotonicClock.nanoseconds()
        self.frameList = .allocate(capacity: geometry.frameCount)
        self.candidates = .allocate(capacity: LockstepVerifier.candidateCapacity)
    }

    deinit {
        frameList.deallocate()
        candidates.deallocate()
    }

    mutating func execute() -> DuplexSummary {
        do {
            try track()
            try fullCopy()
            let end = try passes()
            try blackout(after: end)
            try verifyAll()
            finish(.duplexed(end), message: successMessage(end))
        } catch let failure as DuplexFailure {
            if state == .verify || state == .blackout {
                hardware.setLockstep(false)
            }
            hardware.stopTracking()
            finish(.failed(failure.reason), message: failure.message)
        } catch {
            if state == .verify || state == .blackout {
                hardware.setLockstep(false)
            }
            hardware.stopTracking()
            finish(.failed(.hardwareError), message: "\(error)")
        }
        return summary
    }

    // MARK: - Phases

    private mutating func track() throws {
        enter(.tracking)
        hardware.setDMADualWrite(engine.policy.dmaDualWrite)
        trackingStartNanos = MonotonicClock.nanoseconds()
        do {
            try hardware.startTracking()
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "cannot start dirty tracking: \(error)")
        }
    }

    private mutating func fullCopy() throws {
        enter(.fullCopy)
        let start = MonotonicClock.nanoseconds()
        var frame = 0
        while frame < geometry.frameCount {
            try checkStop()
            let end = min(frame + DuplexEngine.chunkFrames, geometry.frameCount)
            hardware.copyToSpare(frames: frame..<end)
            frame = end
            observer(.progress(.fullCopy, completedFrames: frame, totalFrames: geometry.frameCount))
        }
        let record = DuplexSummary.FullCopy(
            durationMicroseconds: MonotonicClock.microseconds(since: start), bytes: geometry.byteCount)
        summary.fullCopy = record
        observer(.fullCopyCompleted(record))
    }

    private mutating func passes() throws -> PassEndReason {
        enter(.passes)
        var previousDirty = Int.max
        var lastHarvest = trackingStartNanos
        var pass = 0
        while true {
            try checkStop()
            let policy = engine.policy
            summary.thresholdFrames = policy.thresholdFrames
            pass += 1
            let start = MonotonicClock.nanoseconds()
            let sinceLast = start &- lastHarvest
            lastHarvest = start
            let capacity = max(1, min(policy.harvestBatchFrames, frameList.count))
            let batch = UnsafeMutableBufferPointer(rebasing: frameList[0..<capacity])
            var dirty = 0
            var scan = 0
            while scan < geometry.frameCount {
                let result = try harvest(scan..<geometry.frameCount, into: batch)
                if result.reported > 0 {
                    hardware.copyToSpare(frameList: UnsafeBufferPointer(rebasing: batch[0..<result.reported]))
                }
                dirty += result.reported
                scan = result.scanEnd
            }
            let remaining = hardware.dirtyFrameCount
            let record = DuplexSummary.Pass(
                pass: pass, dirtyFrames: dirty, copiedFrames: dirty,
                durationMicroseconds: MonotonicClock.microseconds(since: start),
                dirtyRateFramesPerSecond: sinceLast == 0 ? 0 : Double(dirty) * 1e9 / Double(sinceLast),
                remainingDirtyFrames: remaining)
            summary.passes.append(record)
            observer(.passCompleted(record, thresholdFrames: policy.thresholdFrames))

            let reason: PassEndReason?
            if remaining <= policy.thresholdFrames {
                reason = .threshold
            } else if pass >= policy.maxPasses {
                reason = .maxPasses
            } else if previousDirty != .max, policy.minProgress > 0,
                Double(dirty) > Double(previousDirty) * (1 - policy.minProgress)
            {
                reason = .stalled
            } else {
                reason = nil
            }
            if let reason {
                summary.passEndReason = reason
                observer(.passesEnded(reason, dirtyFrames: remaining))
                return reason
            }
            previousDirty = dirty
        }
    }

    private mutating func blackout(after end: PassEndReason) throws {
        try checkStop()
        enter(.blackout)
        let outcome: BlackoutOutcome
        do {
            outcome = try engine.performBlackout(
                frameList: frameList, mismatches: candidates,
                verifyInBlackout: engine.policy.verifyFinalFramesInBlackout, enterLockstep: true)
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "\(error)")
        }
        summary.blackout = outcome.record
        observer(.blackoutCompleted(outcome.record))
        if outcome.check.mismatches > 0 {
            let frames = listed(candidates, outcome.check.reported)
            summary.verify = DuplexSummary.Verify(
                framesChecked: outcome.check.checked, mismatches: outcome.check.mismatches,
                firstMismatches: Array(frames.prefix(DuplexEngine.reportedMismatches)))
            throw DuplexFailure.mismatch(count: outcome.check.mismatches, frames: frames, when: "in the final copy")
        }
    }

    private mutating func verifyAll() throws {
        enter(.verify)
        let total = geometry.frameCount
        let verifier = LockstepVerifier(hardware: hardware)
        let record: DuplexSummary.Verify
        do {
            record = try verifier.verify(
                geometry.allFrames, chunkFrames: DuplexEngine.chunkFrames,
                beforeChunk: { try checkStop() },
                afterChunk: { observer(.progress(.verify, completedFrames: $0, totalFrames: total)) })
        } catch let failure as DuplexFailure {
            throw failure
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "verify: \(error)")
        }
        summary.verify = record
        observer(.verifyCompleted(record))
        if record.mismatches > 0 {
            throw DuplexFailure.mismatch(count: record.mismatches, frames: record.firstMismatches, when: "in lockstep")
        }
    }

    // MARK: - Helpers

    private func harvest(_ range: Range<Int>, into output: UnsafeMutableBufferPointer<UInt32>) throws -> HarvestResult {
        do {
            return try hardware.harvest(frames: range, flags: .getAndClear, into: output)
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "\(error)")
        }
    }

    private func checkStop() throws {
        if engine.stopToken.isStopRequested {
            throw DuplexFailure(reason: .stopped, message: "stopped on request in state \(state.rawValue)")
        }
    }

    private func listed(_ buffer: UnsafeMutableBufferPointer<UInt32>, _ count: Int) -> [Int] {
        buffer[0..<count].map { Int($0) }
    }

    private mutating func enter(_ next: DuplexState) {
        let previous = state
        state = next
        summary.finalState = next
        observer(.stateChanged(from: previous, to: next))
    }

    private func successMessage(_ end: PassEndReason) -> String {
        let blackout = summary.blackout
        let why: String
        switch end {
        case .threshold: why = "dirty frames fell to the threshold of \(summary.thresholdFrames)"
        case .maxPasses: why = "the pass limit of \(summary.passes.count) was reached"
        case .stalled: why = "a pass no longer shrank the dirty set"
        }
        return "duplexed after \(summary.passes.count) passes (\(why)); verified \(summary.verify?.framesChecked ?? 0) frames, "
            + "blackout \(blackout?.durationMicroseconds ?? 0) µs for \(blackout?.finalFrames ?? 0) final frames"
    }

    private mutating func finish(_ outcome: DuplexOutcome, message: String) {
        if outcome.isDuplexed {
            enter(.duplexed)
        } else {
            summary.failedIn = state
            enter(.failed)
        }
        summary.outcome = outcome
        summary.message = message
        summary.totalMicroseconds = MonotonicClock.microseconds(since: startNanos)
        summary.hardwareStatistics = hardware.statistics
        observer(.finished(summary))
    }
}

/// Why a duplex ended in `failed`, carried from the phase that failed to the summary.
private struct DuplexFailure: Error {
    var reason: DuplexFailureReason
    var message: String

    static func mismatch(count: Int, frames: [Int], when: String) -> DuplexFailure {
        let first = frames.prefix(8).map(String.init).joined(separator: ", ")
        return DuplexFailure(
            reason: .verifyMismatch,
            message: "verify failed \(when): \(count) frame\(count == 1 ? "" : "s") differ between active and spare"
                + (first.isEmpty ? "" : " (first: \(first))"))
    }
}
