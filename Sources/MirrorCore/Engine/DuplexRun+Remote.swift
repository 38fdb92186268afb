/// The parts of a duplex that differ with a spare on another host (``DuplexEngine/spare``): the
/// copies are writes to the spare store, DMA is tracked instead of dual-written, and the final
/// blackout stages the last dirty frames as the first epoch, committed after it in place of the
/// verify.
extension DuplexRun {
    /// Checks that the machine can duplex to a spare on another host and starts the sync.
    mutating func prepareRemote() throws {
        guard let memory = hardware.activeMemory, hardware.canTrackDMA else {
            throw DuplexFailure(
                reason: .hardwareError,
                message: "the \(hardware.backendName) backend cannot duplex to a spare on another host "
                    + "(it gives no view of the active module, or cannot track the DMA engine's writes)")
        }
        let replicator: EpochReplicator?
        do {
            replicator = try engine.replicator()
        } catch {
            throw DuplexFailure(reason: .hardwareError, message: "\(error)")
        }
        guard let replicator else { return }
        if let problem = replicator.dirtyLimitProblem {
            throw DuplexFailure(reason: .hardwareError, message: problem)
        }
        // Set first: a failure from here on is the remote sync's, and its cleanup (tracking off,
        // DMA's too, the resync forgotten) must know it, or a later try would resync
        // incrementally with the dirty state gone.
        remote = replicator
        activeMemory = memory
        if replicator.canResync {
            // Reached again before anything is cleared or written: if it is still away, the
            // dirty state is kept for the next try.
            let intact: Bool
            do {
                intact = try replicator.store.reconnect()
            } catch {
                // Still away: the dirty state is kept for the next try. Refused (another host
                // owns it now): nothing more to keep it for.
                keepsTracking = error.kind == .unreachable
                throw DuplexFailure.spare(error, message: "\(error.operation): \(error.reason)")
            }
            // A spare whose contents were replaced meanwhile gets a sync from scratch.
            resend = intact ? replicator.resend : nil
        }
        replicator.beginSync()
        try spareCall("begin the sync") { () throws(SpareStoreError) in try replicator.store.beginSync() }
    }

    /// An incremental resynchronisation's first step, in place of the full copy: the frames of
    /// the epochs that were never committed, from memory as it is now (the passes then send what
    /// was dirtied since the last committed epoch, tracked meanwhile).
    mutating func resendUncommitted(_ frames: [UInt32], to remote: EpochReplicator, from memory: UnsafeRawPointer)
        throws
    {
        let start = clock.nanoseconds()
        try frames.withUnsafeBufferPointer { list in
            try spareCall("resynchronise") { () throws(SpareStoreError) in
                try remote.store.write(frameList: list, of: memory)
                try remote.store.flush()
            }
        }
        summary.resync = DuplexSummary.Resync(
            resentFrames: frames.count, durationMicroseconds: (clock.nanoseconds() &- start) / 1_000)
        observer(.progress(.fullCopy, completedFrames: frames.count, totalFrames: frames.count))
    }

    /// A blackout's failure as the duplex's: the spare's (unreachable: simplex and another try),
    /// when its writes in that blackout failed, else the hardware's.
    func blackoutFailure(_ error: any Error) -> DuplexFailure {
        if let spare = stageFailure.error {
            return DuplexFailure.spare(
                spare, message: "the final frames to \(engine.spare?.name ?? "the spare"): \(spare.reason)")
        }
        return DuplexFailure(reason: .hardwareError, message: "\(error)")
    }

    /// Runs a call to the spare store, turning its failure into the duplex's.
    func spareCall(_ what: String, _ body: () throws(SpareStoreError) -> Void) throws {
        do {
            try body()
        } catch {
            throw DuplexFailure.spare(
                error, message: "\(what) to \(engine.spare?.name ?? "the spare"): \(error.reason)")
        }
    }

    /// The final blackout's copy with a spare on another host (nil for a local spare, whose
    /// final copy goes to the module): the frames into the staging area as epoch 1; more than an
    /// epoch holds (a pass limit or a stall ended the passes early) are written in place on the
    /// spare instead, with nothing running, and epoch 1 then holds none: either way the image and
    /// epoch 1 together are memory as the blackout found it.
    var stageFirstEpoch: ((UnsafeBufferPointer<UInt32>) throws -> Void)? {
        guard let remote, let activeMemory else { return nil }
        let hooks = engine.hooks
        let failure = stageFailure
        return { list in
            if remote.stageFirst(list, hooks: hooks) { return }
            do throws(SpareStoreError) {
                try remote.store.write(frameList: list, of: activeMemory)
                try remote.store.flush()
            } catch {
                failure.error = error
                throw error
            }
            _ = remote.stageFirst(UnsafeBufferPointer(start: nil, count: 0), hooks: hooks)
        }
    }

    /// Commits the first epoch, staged in the final blackout: from its commit on, the spare can
    /// be taken over.
    mutating func commitFirstEpoch(_ remote: EpochReplicator) throws {
        enter(.firstEpoch)
        var report: EpochReport?
        try spareCall("commit the first epoch") { () throws(SpareStoreError) in
            report = try remote.commitFirst(hooks: engine.hooks)
        }
        summary.firstEpoch = report
        if let report { observer(.firstEpochCommitted(report)) }
    }
}

/// What the final blackout's writes to a spare on another host failed with: set inside the
/// blackout's staging closure, read after it (one thread, the engine's).
final class StageFailure {
    var error: SpareStoreError?
}

extension DuplexFailure {
    /// The spare on another host's failure as the duplex's: unreachable or failed (simplex,
    /// another try), or refused (no use trying again).
    static func spare(_ error: SpareStoreError, message: String) -> DuplexFailure {
        let reason: DuplexFailureReason =
            switch error.kind {
            case .unreachable: .spareUnreachable
            case .failed: .spareFailed
            case .refused: .spareRefused
            }
        return DuplexFailure(reason: reason, message: message)
    }
}
