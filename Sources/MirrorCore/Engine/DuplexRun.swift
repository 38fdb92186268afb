/// The mutable state of one duplex, alive for one ``DuplexEngine/run(observer:)`` call.
struct DuplexRun: ~Copyable {
    let hardware: any DuplexHardware
    let engine: DuplexEngine
    let observer: @Sendable (DuplexEvent) -> Void
    let geometry: MemoryGeometry
    let clock: any EngineClock
    var summary: DuplexSummary
    var state: DuplexState = .idle
    let startNanos: UInt64
    /// When tracking began: the first pass's dirty rate counts from here.
    var trackingStartNanos: UInt64 = 0
    /// The CPUs' stores when tracking began, for the workload's store rate during the duplex.
    var trackingStartStores: [UInt64] = []
    /// When the full copy ended, and the CPUs' stores then: the start of the passes, the window
    /// in which the convergence policies differ.
    var passesStartNanos: UInt64 = 0
    var passesStartStores: [UInt64] = []
    /// The workload's stores a second per CPU just before tracking began (empty: not measured).
    var baselineStoreRates: [Double] = []
    /// The engine's own costs, measured as the duplex goes.
    var model = BlackoutModel()
    /// The throttles of the CPUs.
    var convergence: ConvergenceController
    /// How many threshold blackouts predicted far over the target have been put off so far.
    var thresholdRetries = 0
    /// Output vector of the harvests and of the final list; sized for every frame, so the
    /// blackout's harvest takes the whole dirty set in one call.
    let frameList: UnsafeMutableBufferPointer<UInt32>
    /// Output vector of the verify.
    let candidates: UnsafeMutableBufferPointer<UInt32>
    /// With a spare on another host: its replicator, which stages and commits the first epoch.
    var remote: EpochReplicator?
    /// With a spare on another host: the active module as the CPUs see it.
    var activeMemory: UnsafeRawPointer?
    /// What the final blackout's writes to a spare on another host failed with, if they did.
    let stageFailure = StageFailure()
    /// An incremental resynchronisation: the frames of the epochs never committed, sent in
    /// place of the full copy (nil: a sync from scratch).
    var resend: [UInt32]?
    /// Whether a failure leaves tracking on (the spare host was not reached again: the dirty
    /// state is kept for the next try).
    var keepsTracking = false

    init(engine: DuplexEngine, observer: @escaping @Sendable (DuplexEvent) -> Void) {
        self.engine = engine
        self.hardware = engine.hardware
        self.observer = observer
        self.geometry = engine.hardware.geometry
        self.clock = engine.clock
        let policy = engine.policy
        self.summary = DuplexSummary(
            backend: hardware.backendName, geometry: geometry, thresholdFrames: policy.thresholdFrames, policy: policy)
        self.summary.spareName = engine.spare?.name
        self.startNanos = engine.clock.nanoseconds()
        self.convergence = ConvergenceController(cpuCount: engine.hardware.cpuCount)
        self.frameList = .allocate(capacity: geometry.frameCount)
        self.candidates = .allocate(capacity: LockstepVerifier.candidateCapacity)
        // Touched now (4 bytes a frame: 1 MiB a GiB, well under a millisecond), so that no
        // harvest or comparison inside a blackout takes a page fault on a part of a list that no
        // earlier pass reached.
        frameList.initialize(repeating: 0)
        candidates.initialize(repeating: 0)
    }

    deinit {
        frameList.deallocate()
        candidates.deallocate()
    }

    mutating func execute() -> DuplexSummary {
        do {
            measureBaseline()
            try track()
            try fullCopy()
            let end = try passes()
            try blackout(after: end)
            if let remote {
                try commitFirstEpoch(remote)
                finish(.replicating(end.reason), message: replicatingMessage(end.reason))
                return summary
            }
            try verifyAll()
            // A module that failed during the verify still ends the duplex: never "duplexed" then.
            // (A plain stop request this late keeps the verified duplex.)
            if engine.stopToken.moduleFault != nil { try checkStop() }
            finish(.duplexed(end.reason), message: successMessage(end.reason))
        } catch var failure as DuplexFailure {
            // Frames a failing module lost differ: that is the module's failure, not the copy's.
            if failure.reason == .verifyMismatch, let fault = engine.stopToken.moduleFault {
                failure = DuplexFailure(
                    reason: .moduleFailed, message: "duplex aborted in state \(struckIn.rawValue): \(fault)")
            }
            abandon()
            finish(.failed(failure.reason), message: failure.message)
        } catch {
            abandon()
            finish(.failed(.hardwareError), message: "\(error)")
        }
        return summary
    }

    /// After a failure: lockstep off if it was switched on, tracking off (DMA's too), every CPU at
    /// full pace.
    private mutating func abandon() {
        if remote == nil && (state == .verify || state == .blackout) {
            hardware.setLockstep(false)
        }
        engine.liftThrottles()
        convergence.lift(now: clock.nanoseconds())
        guard !keepsTracking else { return }
        hardware.stopTracking()
        if let remote {
            hardware.setDMATracking(false)
            hardware.setDirtyLimit(0)
            remote.forgetResync()
        }
    }

    // MARK: - Phases

    /// Windows the baseline may take to settle, and how close two windows must agree.
    static let baselineWindows = 20
    static let baselineAgreement = 0.1

    /// Samples the workload's store rate before tracking starts, the base of its slowdown: window
    /// after window until two agree (a workload that has just started, faulting its pages in,
    /// runs slower than it will), at most ``baselineWindows``.
    private mutating func measureBaseline() {
        let window = engine.policy.baselineNanoseconds
        guard hardware.cpuCount > 0, window > 0 else { return }
        var previous: [Double]?
        for _ in 0..<Self.baselineWindows {
            let before = (0..<hardware.cpuCount).map { hardware.cpuCounters($0).stores }
            let start = clock.nanoseconds()
            clock.sleep(nanoseconds: window)
            let seconds = Double(clock.nanoseconds() &- start) / 1e9
            guard seconds > 0 else { return }
            let rates = (0..<hardware.cpuCount).map { Double(hardware.cpuCounters($0).stores &- before[$0]) / seconds }
            baselineStoreRates = rates
            let total = rates.reduce(0, +)
            if let previous, abs(total - previous.reduce(0, +)) <= Self.baselineAgreement * total { return }
            previous = rates
        }
    }

    private mutating func track() throws {
        enter(.tracking)
        if engine.spare != nil { try prepareRemote() }
        if remote != nil {
            // No dual write reaches another host: DMA's writes are tracked instead (off only as
            // the negative control `dma.dual_write = false`, which then loses them).
            hardware.setDMADualWrite(false)
            hardware.setDMATracking(engine.policy.dmaDualWrite)
        } else {
            hardware.setDMADualWrite(engine.policy.dmaDualWrite)
        }
        trackingStartNanos = clock.nanoseconds()
        trackingStartStores = (0..<hardware.cpuCount).map { hardware.cpuCounters($0).stores }
        do {
            // An incremental resynchronisation keeps what tracking gathered since the last
            // committed epoch.
            if resend == nil { try hardware.startTracking() }
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "cannot start dirty tracking: \(error)")
        }
        convergence.start(hardware: hardware, now: trackingStartNanos)
    }

    private mutating func fullCopy() throws {
        enter(.fullCopy)
        if let resend, let remote, let activeMemory {
            try resendUncommitted(resend, to: remote, from: activeMemory)
            passesStartNanos = clock.nanoseconds()
            passesStartStores = (0..<hardware.cpuCount).map { hardware.cpuCounters($0).stores }
            return
        }
        let start = clock.nanoseconds()
        var frame = 0
        while frame < geometry.frameCount {
            try checkStop()
            let end = min(frame + DuplexEngine.chunkFrames, geometry.frameCount)
            if let remote, let activeMemory {
                try spareCall("full copy") { () throws(SpareStoreError) in
                    try remote.store.write(frames: frame..<end, of: activeMemory)
                }
            } else {
                hardware.copyToSpare(frames: frame..<end)
            }
            frame = end
            observer(.progress(.fullCopy, completedFrames: frame, totalFrames: geometry.frameCount))
        }
        if let remote {
            try spareCall("full copy") { () throws(SpareStoreError) in try remote.store.flush() }
        }
        passesStartNanos = clock.nanoseconds()
        passesStartStores = (0..<hardware.cpuCount).map { hardware.cpuCounters($0).stores }
        let duration = passesStartNanos &- start
        let record = DuplexSummary.FullCopy(durationMicroseconds: duration / 1_000, bytes: geometry.byteCount)
        summary.fullCopy = record
        observer(.fullCopyCompleted(record))
    }

    /// The blackout, unless the passes already took it (a probe that found the dirty set small
    /// enough went on to the final copy); then what it did is recorded and reported.
    private mutating func blackout(after end: PassesEnd) throws {
        let outcome: BlackoutOutcome
        if let taken = end.blackout {
            state = .blackout
            engine.stopToken.enter(.blackout)
            summary.finalState = .blackout
            outcome = taken
            observer(.stateChanged(from: .passes, to: .blackout))
        } else {
            try checkStop()
            enter(.blackout)
            do {
                let session = try BlackoutSession(hardware: hardware, clock: clock)
                outcome = try session.finish(
                    frameList: frameList, mismatches: candidates,
                    verifyInBlackout: remote == nil && engine.policy.verifyFinalFramesInBlackout,
                    enterLockstep: remote == nil, stage: stageFirstEpoch)
            } catch {
                throw blackoutFailure(error)
            }
        }
        let now = clock.nanoseconds()
        convergence.lift(now: now)
        var record = outcome.record
        record.predictedMicroseconds = end.predictedMicroseconds
        model.recordResume(outcome.record.resumeMicroseconds * 1_000)
        if engine.policy.blackoutTargetNanoseconds > 0
            && outcome.record.stopMicroseconds * 1_000 > engine.policy.blackoutTargetNanoseconds
        {
            summary.convergence.stopExceedsTarget = true
        }
        summary.blackout = record
        recordWorkload(until: now)
        observer(.blackoutCompleted(record))
        if outcome.check.mismatches > 0 {
            let frames = listed(candidates, outcome.check.reported)
            summary.verify = DuplexSummary.Verify(
                framesChecked: outcome.check.checked, mismatches: outcome.check.mismatches,
                firstMismatches: Array(frames.prefix(DuplexEngine.reportedMismatches)))
            throw DuplexFailure.mismatch(count: outcome.check.mismatches, frames: frames, when: "in the final copy")
        }
    }

    /// Fills in what the duplex cost the workload, from the start of tracking to `now` (the end of
    /// the blackout, when every throttle is lifted), and from the start of the passes to `now`.
    private mutating func recordWorkload(until now: UInt64) {
        var record = summary.convergence
        record.maximumThrottlePercent = convergence.maximumThrottle * 100
        record.cpuMaximumThrottlePercent = convergence.cpuMaximumThrottle.map { $0 * 100 }
        record.throttledMicroseconds = convergence.throttledNanoseconds / 1_000
        guard let duplexRates = storeRates(since: trackingStartNanos, stores: trackingStartStores, until: now) else {
            summary.convergence = record
            return
        }
        record.duplexStoresPerSecond = duplexRates.reduce(0, +)
        if baselineStoreRates.count == duplexRates.count {
            let baseline = baselineStoreRates.reduce(0, +)
            record.baselineStoresPerSecond = baseline
            let base = baselineStoreRates
            let slowdown = { (rates: [Double]) -> (Double?, [Double]) in
                (baseline > 0 ? rates.reduce(0, +) / baseline : nil, zip(rates, base).map { $1 > 0 ? $0 / $1 : 1 })
            }
            (record.workloadSlowdown, record.cpuSlowdown) = slowdown(duplexRates)
            // A window shorter than the baseline's says more about scheduling than about the policy.
            if now &- passesStartNanos >= engine.policy.baselineNanoseconds,
                let passesRates = storeRates(since: passesStartNanos, stores: passesStartStores, until: now)
            {
                (record.passesSlowdown, record.passesCPUSlowdown) = slowdown(passesRates)
            }
        }
        summary.convergence = record
    }

    /// Each CPU's stores a second from `start` (when it had made `stores`) to `now`; nil when the
    /// window is empty or was not read.
    private func storeRates(since start: UInt64, stores: [UInt64], until now: UInt64) -> [Double]? {
        let seconds = Double(now &- start) / 1e9
        guard seconds > 0, hardware.cpuCount > 0, stores.count == hardware.cpuCount else { return nil }
        return (0..<hardware.cpuCount).map { Double(hardware.cpuCounters($0).stores &- stores[$0]) / seconds }
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

    func harvest(_ range: Range<Int>, into output: UnsafeMutableBufferPointer<UInt32>) throws -> HarvestResult {
        do {
            return try hardware.harvest(frames: range, flags: .getAndClear, into: output)
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "\(error)")
        }
    }

    func checkStop() throws {
        guard engine.stopToken.isStopRequested else { return }
        if let fault = engine.stopToken.moduleFault {
            throw DuplexFailure(
                reason: .moduleFailed, message: "duplex aborted in state \(struckIn.rawValue): \(fault)")
        }
        throw DuplexFailure(reason: .stopped, message: "stopped on request in state \(state.rawValue)")
    }

    private func listed(_ buffer: UnsafeMutableBufferPointer<UInt32>, _ count: Int) -> [Int] {
        buffer[0..<count].map { Int($0) }
    }

    /// Where the module fault that aborts the duplex struck: the phase the engine was in when it
    /// was reported, not the one in which the engine noticed it.
    private var struckIn: DuplexState { engine.stopToken.faultPhase ?? state }

    mutating func enter(_ next: DuplexState) {
        let previous = state
        state = next
        engine.stopToken.enter(next)
        summary.finalState = next
        observer(.stateChanged(from: previous, to: next))
    }

    private func replicatingMessage(_ end: PassEndReason) -> String {
        let blackout = summary.blackout
        var text =
            "replicating to \(engine.spare?.name ?? "the spare") after \(summary.passes.count) passes (\(why(end))); "
            + "blackout \(blackout?.durationMicroseconds ?? 0) µs for \(blackout?.finalFrames ?? 0) final frames, "
            + "committed as epoch \(summary.firstEpoch?.epoch ?? 0)"
        if let resync = summary.resync {
            // In place of the full copy: the epochs never committed and what was dirtied while the
            // spare was away (the first pass). The passes after it, and the blackout, are any sync's.
            let instead = resync.resentFrames + (summary.passes.first?.copiedFrames ?? 0)
            let all =
                resync.resentFrames + summary.passes.reduce(0) { $0 + $1.copiedFrames } + (blackout?.finalFrames ?? 0)
            let share = Double(instead) * 100 / Double(max(1, geometry.frameCount))
            text +=
                "; resynchronised incrementally: \(instead) frames in place of a full copy of \(geometry.frameCount) "
                + "(\(Int(share.rounded()))%), \(all) frames sent in all"
        }
        return text
    }

    private func why(_ end: PassEndReason) -> String {
        switch end {
        case .target: "the predicted blackout fell to the target of \(summary.convergence.targetMicroseconds) µs"
        case .threshold: "dirty frames fell to the threshold of \(summary.thresholdFrames)"
        case .maxPasses: "the pass limit of \(summary.passes.count) was reached"
        case .stalled: "a pass no longer shrank the dirty set"
        case .deadline: "duplex.max_duration passed"
        }
    }

    private func successMessage(_ end: PassEndReason) -> String {
        let blackout = summary.blackout
        let why = why(end)
        return
            "duplexed after \(summary.passes.count) passes (\(why)); verified \(summary.verify?.framesChecked ?? 0) frames, "
            + "blackout \(blackout?.durationMicroseconds ?? 0) µs for \(blackout?.finalFrames ?? 0) final frames"
    }

    private mutating func finish(_ outcome: DuplexOutcome, message: String) {
        if outcome.isDuplexed {
            enter(.duplexed)
        } else if outcome.isReplicating {
            enter(.replicating)
        } else {
            summary.failedIn = outcome == .failed(.moduleFailed) ? struckIn : state
            enter(.failed)
        }
        summary.outcome = outcome
        summary.message = message
        summary.totalMicroseconds = (clock.nanoseconds() &- startNanos) / 1_000
        summary.hardwareStatistics = hardware.statistics
        observer(.finished(summary))
    }
}

/// Why a duplex ended in `failed`, carried from the phase that failed to the summary.
struct DuplexFailure: Error {
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
