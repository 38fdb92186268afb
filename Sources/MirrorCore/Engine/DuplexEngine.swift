import Synchronization

/// Runs the Stratus duplexing loop against any ``DuplexHardware``:
/// full copy → harvest-and-copy passes → blackout → final copy → verify → lockstep.
///
/// One call of ``run(observer:)`` is one duplex, run synchronously on the caller's thread (the
/// loop is CPU-bound; give it a thread of its own). Progress is reported through the observer as
/// it happens. The policy may be replaced while a duplex runs; the new one is read at the next
/// pass.
///
/// The blackout lasts as long as the last dirty frames take to copy, whatever the size of memory:
/// lockstep is switched on inside it, and every frame, the final ones included, is verified
/// afterwards while lockstep keeps both modules equal (the policy may compare the final frames
/// inside the blackout as well, before lockstep starts). A frame that differs
/// then is compared again, and any that still differ are confirmed in a second short blackout, so
/// a store in flight between the two modules is never mistaken for a lost write.
public final class DuplexEngine: Sendable {
    /// How many differing frame numbers a summary lists.
    public static let reportedMismatches = 16
    /// Frames per chunk of the full copy and of the verify (a sign of life and a stop check each).
    static let chunkFrames = 16_384

    /// The machine being duplexed.
    public let hardware: any DuplexHardware
    /// Triggered to stop a running duplex at its next safe point.
    public let stopToken: DuplexStopToken
    /// The clock every cost, rate and deadline is measured on.
    public let clock: any EngineClock
    /// The spare on another host, or nil for the hardware's own spare module.
    public let spare: (any SpareStore)?
    /// How epochs are taken, with a spare on another host.
    public let replication: ReplicationPolicy
    /// What the wiring layer does in each epoch's pause and after its commit (output commit).
    public let hooks: ReplicationHooks
    private let policyState: Mutex<DuplexPolicy>
    /// Made by the first duplex to a spare on another host, kept for the epochs that follow.
    private let replicatorState = Mutex<EpochReplicator?>(nil)

    /// Creates an engine for `hardware` with `policy`; `clock` is the system's unless a test
    /// gives its own. With a `spare` on another host, a duplex ends in `replicating` with its
    /// first epoch committed there, and ``replicate(observer:)`` keeps it level.
    public init(
        hardware: any DuplexHardware, policy: DuplexPolicy, stopToken: DuplexStopToken = DuplexStopToken(),
        clock: any EngineClock = SystemClock(), spare: (any SpareStore)? = nil,
        replication: ReplicationPolicy = ReplicationPolicy(), hooks: ReplicationHooks = ReplicationHooks()
    ) {
        self.hardware = hardware
        self.stopToken = stopToken
        self.clock = clock
        self.policyState = Mutex(policy)
        self.spare = spare
        self.replication = replication
        self.hooks = hooks
    }

    /// The replicator for the spare on another host, made on first use.
    func replicator() throws(HardwareError) -> EpochReplicator? {
        guard let spare else { return nil }
        return try replicatorState.withLock { (made) throws(HardwareError) -> EpochReplicator in
            if let made { return made }
            let replicator = try EpochReplicator(hardware: hardware, store: spare, policy: replication, clock: clock)
            made = replicator
            return replicator
        }
    }

    /// Keeps the spare on another host level, epoch by epoch, after a duplex that ended in
    /// `replicating`, until ``stopToken`` asks for a stop (the last epoch then commits with every
    /// CPU stopped, and the machine is left stopped for its shutdown) or the spare fails. Runs on
    /// the caller's thread, with a shipping thread of its own.
    public func replicate(observer: @escaping @Sendable (ReplicationEvent) -> Void = { _ in }) -> ReplicationEnd {
        guard let replicator = replicatorState.withLock({ $0 }), replicator.committedEpoch > 0 else {
            return ReplicationEnd(
                reason: .hardwareError, message: "no sync to a spare on another host has committed its first epoch",
                lastCommittedEpoch: 0)
        }
        let end = replicator.run(
            stopToken: stopToken, targetNanoseconds: policy.blackoutTargetNanoseconds, hooks: hooks, observer: observer)
        switch end.reason {
        case .stopped:
            break
        case .spareFailed where end.spareError?.kind == .unreachable:
            // Tracking (DMA's too) stays on: the next sync sends what changed since the last
            // committed epoch, not all of memory.
            replicator.keepForResync()
        default:
            hardware.stopTracking()
            hardware.setDMATracking(false)
            replicator.forgetResync()
        }
        return end
    }

    /// Gives up the replication a duplex that ended `replicating` left ready, when it will not
    /// run (the service settled another state meanwhile): tracking off (DMA's too), the writers'
    /// dirty limit lifted, so that they never wait for a pause that will not come. The next sync
    /// copies in full.
    public func abandonReplication() {
        guard let replicator = replicatorState.withLock({ $0 }) else { return }
        hardware.setDirtyLimit(0)
        hardware.stopTracking()
        hardware.setDMATracking(false)
        replicator.forgetResync()
    }

    /// The policy in force.
    public var policy: DuplexPolicy {
        policyState.withLock { $0 }
    }

    /// Replaces the policy; a running duplex uses it from its next pass on.
    public func updatePolicy(_ policy: DuplexPolicy) {
        policyState.withLock { $0 = policy }
    }

    /// Compares `frames` of the spare with the active module while duplexed (a *scrub*): the
    /// same comparison as the verify, with differences confirmed in a short blackout. Run it
    /// slice by slice to keep checking that lockstep holds.
    public func scrub(frames: Range<Int>) throws -> DuplexSummary.Verify {
        try LockstepVerifier(hardware: hardware).verify(
            frames, chunkFrames: Self.chunkFrames, beforeChunk: {}, afterChunk: { _ in })
    }

    /// Runs one blackout exactly as a duplex does (stop, harvest every dirty frame, copy, and,
    /// if the policy says so, compare them), but leaves lockstep off and tracking on: how
    /// `mirrord-bench` measures the blackout against its floor. Tracking must be active.
    public func measureBlackout() throws(HardwareError) -> DuplexSummary.Blackout {
        let frames = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: hardware.geometry.frameCount)
        let mismatches = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: Self.mismatchCapacity)
        defer {
            frames.deallocate()
            mismatches.deallocate()
        }
        return try measureBlackout(frameList: frames, mismatches: mismatches)
    }

    /// Frames a blackout's comparison lists at most: the capacity of the `mismatches` list
    /// ``measureBlackout(frameList:mismatches:)`` takes.
    public static let mismatchCapacity = LockstepVerifier.candidateCapacity

    /// ``measureBlackout()`` with the caller's lists (`frameList` of a frame per frame of memory,
    /// `mismatches` of ``mismatchCapacity``), as a duplex reuses its own: a
    /// bench taking many samples touches them once, so that no sample's harvest takes a page
    /// fault on a fresh list inside its blackout. `beforeResume` runs when the blackout's end has
    /// been taken, the writers still stopped: what it reads covers the blackout and nothing after.
    public func measureBlackout(
        frameList: UnsafeMutableBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>,
        beforeResume: (() -> Void)? = nil
    ) throws(HardwareError) -> DuplexSummary.Blackout {
        precondition(frameList.count >= hardware.geometry.frameCount, "a frame list shorter than memory")
        precondition(mismatches.count >= Self.mismatchCapacity, "a mismatch list shorter than mismatchCapacity")
        let session = try BlackoutSession(hardware: hardware, clock: clock)
        return try session.finish(
            frameList: frameList, mismatches: mismatches, verifyInBlackout: policy.verifyFinalFramesInBlackout,
            enterLockstep: false, beforeResume: beforeResume
        ).record
    }

    /// Sets every CPU back to full pace.
    func liftThrottles() {
        for cpu in 0..<hardware.cpuCount { hardware.setThrottle(cpu: cpu, fraction: 0) }
    }

    /// Runs one duplex to `duplexed` or `failed` and returns its summary (also delivered last to
    /// the observer as ``DuplexEvent/finished(_:)``).
    public func run(observer: @escaping @Sendable (DuplexEvent) -> Void = { _ in }) -> DuplexSummary {
        var run = DuplexRun(engine: self, observer: observer)
        return run.execute()
    }
}
