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
    private let policyState: Mutex<DuplexPolicy>

    /// Creates an engine for `hardware` with `policy`; `clock` is the system's unless a test
    /// gives its own.
    public init(
        hardware: any DuplexHardware, policy: DuplexPolicy, stopToken: DuplexStopToken = DuplexStopToken(),
        clock: any EngineClock = SystemClock()
    ) {
        self.hardware = hardware
        self.stopToken = stopToken
        self.clock = clock
        self.policyState = Mutex(policy)
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
        let mismatches = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: LockstepVerifier.candidateCapacity)
        defer {
            frames.deallocate()
            mismatches.deallocate()
        }
        let session = try BlackoutSession(hardware: hardware, clock: clock)
        return try session.finish(
            frameList: frames, mismatches: mismatches, verifyInBlackout: policy.verifyFinalFramesInBlackout,
            enterLockstep: false
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
