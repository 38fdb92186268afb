import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a spare on another host an epoch or two behind the active module, once a sync has
/// brought it level: Remus's scheme, with mirrord's blackout for the pause.
///
/// Every `remote.epoch` the machine *pauses* (every CPU and the DMA engine at a checkpoint): the
/// frames dirtied since the last pause are harvested and copied into one of two staging slots,
/// and the machine runs on while a shipping thread commits that epoch on the spare. On machines
/// whose writers can copy on write (``DuplexHardware/copyOnWriteStaging``), the pause only lists
/// the frames as pending and the copy follows the resume: this thread copies them while a writer
/// about to store into one still pending copies it first, so the slot holds memory exactly as the
/// pause found it, and is queued for shipping only once every frame is in it
/// (``SpareStore/commit(epoch:frameList:staged:)``). The pause comes early when the dirty frames
/// reach what the blackout target lets a pause copy (the budget, from the last pauses' costs; with
/// copy-on-write it bounds how long frames stay pending after the resume),
/// and the writers are held to that budget (dirty-limit: a writer that finds that many frames
/// dirty waits for the next pause), so a pause stays within the target however late this thread
/// runs or however far the link is behind (then the writers wait for it: the fast CPUs are
/// slowed, as in a duplex); an epoch always fits a slot and the journal, and is committed whole.
///
/// The check that replaces lockstep's verify: after each commit the shipping thread reads a
/// window of the spare's image back and compares it with memory; a frame that differs is
/// confirmed at the next pause, with nothing running, unless it was written since (dirty, or
/// staged in a later epoch). The window moves on each epoch, so all of memory is read back in
/// turn.
///
/// Used by ``DuplexEngine``: the engine's thread stages and commits the first epoch at the end of
/// a sync, then runs ``run(stopToken:targetNanoseconds:hooks:observer:)``.
package final class EpochReplicator: @unchecked Sendable {
    // @unchecked: the engine's thread owns the fields marked so; the shipping thread owns its
    // buffers; what they share is in `shared`, behind its lock, and the staging slots and the
    // candidates' contents change hands only through it.

    /// Frames read back from the spare after each commit.
    package static let readBackFrames = 256
    /// Frames that differed in a read-back, held for confirmation at the next pause.
    static let candidateCapacity = 64
    /// The shortest time between two pauses that the dirty set's size alone brings on.
    static let minimumEpochNanoseconds: UInt64 = 1_000_000
    /// Frames of each staging slot touched when a sync begins: more than a blackout's final
    /// frames usually are; beyond them, slots are touched as the dirty set grows, outside pauses.
    static let prefaultFrames = 8_192
    /// The fewest frames a dirty limit may allow.
    static let minimumDirtyLimit = 64
    /// The share of the blackout target a pause plans for: the rest absorbs a slower copy.
    static let budgetShare = 0.8
    /// How much each pause moves the smoothed costs of the next one's budget.
    static let smoothing = 0.25

    let hardware: any DuplexHardware
    let store: any SpareStore
    let policy: ReplicationPolicy
    let clock: any EngineClock
    let frameSize: Int
    let frameCount: Int
    /// The most frames an epoch holds: a staging slot, a journal half.
    let capacity: Int
    private let slots: [StagingSlot]
    /// The epoch each frame was last staged in (0: not since the sync began).
    private let stagedEpoch: UnsafeMutablePointer<UInt64>
    private let shared = Mutex(Shared())
    private let toShipper = Doorbell()
    private let toReplicator = Doorbell()
    /// The shipping thread's read-back buffer, and the candidates' contents as it read them.
    private let readBuffer: UnsafeMutableRawPointer
    private let candidateData: UnsafeMutableRawPointer
    /// The engine thread's one-frame harvest output.
    private let probe: UnsafeMutableBufferPointer<UInt32>
    /// The frames of the newest committed epoch (written by whichever thread committed it).
    private let lastCommitted: Mutex<CommittedFrames>

    /// An epoch's frame list, kept in a buffer of a slot's capacity (no allocation per epoch).
    private struct CommittedFrames: @unchecked Sendable {
        // @unchecked: the buffer is only touched under the replicator's `lastCommitted` lock.
        let frames: UnsafeMutableBufferPointer<UInt32>
        var count = 0
    }

    // The engine thread's own.
    private var nextEpoch: UInt64 = 1
    private var stageNanosecondsPerFrame = 1_000.0
    private var pauseOverheadNanoseconds: UInt64 = 50_000
    private var throttle = 0.0
    /// The dirty limit put on the writers from the first epoch on (0: the machine has none): the
    /// writers themselves stop before an epoch could outgrow a slot, however late this thread
    /// runs; it leaves room for what they dirty between two looks at it.
    private let dirtyLimit: Int
    /// The dirty limit in force now: what one pause may copy within the blackout target, at most
    /// ``dirtyLimit`` (0: none).
    private var limitInForce = 0
    /// Why this machine's writers cannot be held within a slot (nil: they can).
    package let dirtyLimitProblem: String?

    /// What the two threads share.
    private struct Shared {
        /// Slots free to stage into.
        var free: [Int] = []
        /// Slots staged, in epoch order, waiting for the shipping thread (while finishing, the
        /// newest waits for the last epoch, which takes it in).
        var queued: [Int] = []
        /// Whether the shipping thread is committing one now.
        var shipping = false
        /// The newest epoch committed.
        var committed: UInt64 = 0
        /// The spare's failure, which ends replication.
        var failure: SpareStoreError?
        /// Frames that differed in a read-back, and the epoch committed when they were read.
        var candidates: [(frame: Int, epoch: UInt64)] = []
        /// The shipping thread is to end.
        var quit = false
        /// A clean stop is taking its last epoch: the shipping thread leaves the newest queued
        /// epoch to it, which takes that epoch's frames in (one commit fewer with the CPUs
        /// stopped), and flushes each epoch it commits instead of reading it back.
        var finishing = false
        /// The epoch in flight was told that the last epoch follows it (``SpareStore/lastEpochFollows()``):
        /// its frames may stay in the journal, and the shipping thread does not flush them.
        var lastFollows = false
        /// Where the next read-back starts.
        var readCursor = 0
    }

    /// A replicator for `hardware`'s active module to `store`, with `policy`.
    package init(
        hardware: any DuplexHardware, store: any SpareStore, policy: ReplicationPolicy, clock: any EngineClock
    ) throws(HardwareError) {
        self.hardware = hardware
        self.store = store
        self.policy = policy
        self.clock = clock
        frameSize = hardware.geometry.frameSize
        frameCount = hardware.geometry.frameCount
        capacity = max(1, min(store.epochCapacity, policy.epochCapacity(frameSize: frameSize), frameCount))
        slots = [
            try StagingSlot(capacity: capacity, frameSize: frameSize),
            try StagingSlot(capacity: capacity, frameSize: frameSize),
        ]
        stagedEpoch = .allocate(capacity: frameCount)
        stagedEpoch.initialize(repeating: 0, count: frameCount)
        readBuffer = .allocate(byteCount: Self.readBackFrames * frameSize, alignment: 4096)
        candidateData = .allocate(byteCount: Self.candidateCapacity * frameSize, alignment: 4096)
        probe = .allocate(capacity: 1)
        lastCommitted = Mutex(CommittedFrames(frames: .allocate(capacity: capacity)))
        let slack = hardware.dirtyLimitSlack ?? 0
        dirtyLimit = hardware.dirtyLimitSlack == nil ? 0 : capacity - slack
        if hardware.dirtyLimitSlack == nil {
            dirtyLimitProblem =
                "the \(hardware.backendName) machine's writers cannot be held to a dirty limit (with the emulated MMU "
                + "their dirty frames are in page tables until a harvest): an epoch could outgrow remote.staging; "
                + "set [mmu] enabled = false for a spare on another host"
        } else if capacity - slack < Self.minimumDirtyLimit {
            dirtyLimitProblem =
                "remote.staging holds \(capacity) frames, too few for the writers, which may dirty \(slack) frames "
                + "between two looks at the dirty limit; raise remote.staging"
        } else {
            dirtyLimitProblem = nil
        }
        shared.withLock {
            $0.free.reserveCapacity(2)
            $0.queued.reserveCapacity(2)
            $0.candidates.reserveCapacity(Self.candidateCapacity)
        }
    }

    deinit {
        stagedEpoch.deallocate()
        readBuffer.deallocate()
        candidateData.deallocate()
        probe.deallocate()
        lastCommitted.withLock { $0.frames.deallocate() }
    }

    /// The newest epoch committed on the spare.
    package var committedEpoch: UInt64 { shared.withLock { $0.committed } }

    // MARK: - The sync's end (the engine's thread)

    /// Starts over for a new sync: nothing staged, nothing committed. Epoch numbers run on
    /// across syncs (a new sync's first epoch follows the last one's), so that they name one
    /// moment each for the life of the service, and the release log's records keep increasing.
    package func beginSync() {
        stagedEpoch.update(repeating: 0, count: frameCount)
        // The final blackout stages into slot 0: its pages are touched now, not in the blackout.
        for slot in slots { slot.prefault(upTo: Self.prefaultFrames) }
        throttle = 0
        limitInForce = 0
        resend = []
        shared.withLock {
            $0 = Shared(
                free: [0, 1], queued: [], shipping: false, committed: 0, failure: nil, candidates: [],
                quit: false, finishing: false, lastFollows: false, readCursor: 0)
        }
    }

    /// The frames the spare lacks beyond the dirty ones after replication failed: those staged
    /// in epochs that were not committed (their dirty bits were cleared in their pauses). Empty
    /// unless the last replication ended on a failure with epochs in staging.
    package private(set) var resend: [UInt32] = []

    /// Whether an incremental resynchronisation can follow: replication ran, committed epochs,
    /// and ended on a failure of the spare, with tracking left on (``keepForResync()``).
    package private(set) var canResync = false

    /// After replication failed: notes the frames of the epochs left in staging and of the
    /// newest committed one, so that the next sync sends them with the dirty ones instead of a
    /// full copy.
    func keepForResync() {
        var frames = Set<UInt32>()
        shared.withLock { state in
            for index in 0..<slots.count where !state.free.contains(index) {
                frames.formUnion(slots[index].list)
            }
        }
        // And the newest committed epoch's: a spare host that went down with its in-place writes
        // not yet flushed lost them, and the resync's new generation makes its record stale.
        lastCommitted.withLock { last in
            frames.formUnion(UnsafeBufferPointer(rebasing: last.frames[0..<last.count]))
        }
        resend = frames.sorted()
        canResync = true
    }

    /// Forgets what an incremental resynchronisation would need: the next sync copies in full.
    func forgetResync() {
        resend = []
        canResync = false
    }

    /// Copies `list` (every frame dirty at a sync's final blackout, ascending) into a staging
    /// slot as the sync's first epoch, inside that blackout (calling `hooks.paused` there); false
    /// when there are more than an epoch holds. From the resume on, the writers are held to what
    /// a pause may copy within `targetNanoseconds`.
    package func stageFirst(_ list: UnsafeBufferPointer<UInt32>, targetNanoseconds: UInt64, hooks: ReplicationHooks)
        -> Bool
    {
        guard list.count <= capacity, let memory = hardware.activeMemory else { return false }
        let slot = slots[0]
        shared.withLock { $0.free.removeAll { $0 == 0 } }
        slot.count = list.count
        for i in 0..<list.count { slot.frames[i] = list[i] }
        slot.epoch = nextEpoch
        slot.pausedAt = clock.nanoseconds()
        // Its pause is the sync's final blackout, which the duplex's summary reports.
        slot.pauseNanoseconds = 0
        slot.stopNanoseconds = 0
        hooks.paused(nextEpoch)
        slot.stageNanoseconds = stage(slot, from: memory)
        slot.copiedInPause = list.count
        slot.copiedByWriters = 0
        if slot.count >= 64 { stageNanosecondsPerFrame = Double(slot.stageNanoseconds) / Double(slot.count) }
        // From the resume on, no epoch outgrows what a pause may copy.
        if dirtyLimit > 0 {
            limitInForce = budgetLimit(target: targetNanoseconds)
            hardware.setDirtyLimit(limitInForce)
        }
        return true
    }

    /// Commits the sync's first epoch, staged by ``stageFirst(_:targetNanoseconds:hooks:)``, on the calling thread:
    /// the end of a sync.
    package func commitFirst(hooks: ReplicationHooks) throws(SpareStoreError) -> EpochReport {
        let report = try commitHere(0, hooks: hooks)
        nextEpoch = report.epoch + 1
        canResync = false
        return report
    }

    /// Commits slot `index`'s epoch on the calling thread (the shipping thread is not running),
    /// releases what its pause recorded, and frees the slot.
    private func commitHere(_ index: Int, last: Bool = false, hooks: ReplicationHooks) throws(SpareStoreError)
        -> EpochReport
    {
        let report = try ship(slots[index], behind: 0, last: last)
        hooks.committed(report.epoch)
        shared.withLock {
            $0.committed = report.epoch
            $0.free.append(index)
        }
        return report
    }

    // MARK: - Replicating (the engine's thread)

    /// Takes an epoch every `remote.epoch` until `stopToken` asks for a stop or something fails.
    /// On a stop, the last epoch is taken and committed with every CPU stopped, and the machine
    /// is left in that blackout for its shutdown: the spare, brought to its last committed epoch
    /// as a takeover brings it, then equals the active module.
    package func run(
        stopToken: DuplexStopToken, targetNanoseconds: UInt64, hooks: ReplicationHooks,
        observer: @escaping @Sendable (ReplicationEvent) -> Void
    ) -> ReplicationEnd {
        shared.withLock {
            $0.quit = false
            $0.finishing = false
            $0.lastFollows = false
        }
        defer { if dirtyLimit > 0 { hardware.setDirtyLimit(0) } }
        let shipper: WorkerThread
        do {
            shipper = try WorkerThread(name: "mirrord-ship") { [self] in shipLoop(hooks: hooks, observer: observer) }
        } catch {
            return ReplicationEnd(
                reason: .hardwareError, message: "cannot start the shipping thread: \(error)",
                lastCommittedEpoch: committedEpoch)
        }
        let end = replicate(stopToken: stopToken, target: targetNanoseconds, hooks: hooks, observer: observer)
        shared.withLock { $0.quit = true }
        toShipper.ring()
        shipper.join()
        if throttle > 0 { setThrottle(0, reason: "replication ended", observer: observer) }
        return end
    }

    private func replicate(
        stopToken: DuplexStopToken, target: UInt64, hooks: ReplicationHooks,
        observer: @escaping @Sendable (ReplicationEvent) -> Void
    ) -> ReplicationEnd {
        var lastPause = clock.nanoseconds()
        while true {
            let seen = toReplicator.generation
            let (freeSlot, failure) = shared.withLock { ($0.free.first, $0.failure) }
            if let failure { return spareEnd(failure) }
            if stopToken.isStopRequested { return finalEpoch(hooks: hooks, observer: observer) }
            let now = clock.nanoseconds()
            let dirty = hardware.dirtyFrameCount
            let budget = pauseBudget(target: target)
            // The writers are held to the budget: a pause never stages more than it may copy in
            // the target, whether this thread is late or the link is behind.
            limit(toAbout: budgetLimit(target: target), observer: observer)
            let due = now &- lastPause >= policy.epochNanoseconds
            // At the budget, or at the limit the writers are parked at (a little under it).
            let full =
                (dirty >= budget || (limitInForce > 0 && dirty >= limitInForce))
                && now &- lastPause >= Self.minimumEpochNanoseconds
            if let slot = freeSlot {
                // What the next pause will stage, touched while the CPUs run.
                slots[slot].prefault(upTo: max(2 * budget, dirty + dirty / 2))
            }
            if let slot = freeSlot, due || full {
                if throttle > 0 { setThrottle(0, reason: "the link caught up", observer: observer) }
                if let end = pause(into: slot, hooks: hooks, holding: false) { return end }
                lastPause = now
                continue
            }
            if freeSlot == nil && dirty >= capacity / 4 * 3 {
                // Both slots wait for the link and the dirty set nears a slot's size (a machine
                // whose writers overran their limit): every CPU is stopped until a slot is free.
                if let end = hold(stopToken: stopToken, hooks: hooks, observer: observer) { return end }
                lastPause = clock.nanoseconds()
                continue
            }
            let untilDue = policy.epochNanoseconds &- min(policy.epochNanoseconds, now &- lastPause)
            // Near the budget, or writers held at it, a free slot is taken at once.
            let soon: UInt64 = dirty >= budget / 2 ? 100_000 : 1_000_000
            toReplicator.wait(seen: seen, timeoutNanoseconds: max(50_000, min(untilDue, soon)))
        }
    }

    /// The frames a pause may copy within `target` (half an epoch's room without one), with a
    /// margin for the copy's spread.
    private func pauseBudget(target: UInt64) -> Int {
        let aim = UInt64(Double(target) * Self.budgetShare)
        guard aim > pauseOverheadNanoseconds else { return target == 0 ? capacity / 2 : 64 }
        let frames = Double(aim - pauseOverheadNanoseconds) / max(1, stageNanosecondsPerFrame)
        let room = dirtyLimit > 0 ? min(capacity / 2, dirtyLimit) : capacity / 2
        return max(64, min(room, Int(frames)))
    }

    /// Stops the CPUs until a slot is free (the link behind, the dirty set near a slot's size),
    /// then takes the epoch in the same blackout.
    private func hold(
        stopToken: DuplexStopToken, hooks: ReplicationHooks, observer: @escaping @Sendable (ReplicationEvent) -> Void
    ) -> ReplicationEnd? {
        setThrottle(1, reason: "the dirty set nears remote.staging while the link is behind", observer: observer)
        switch stopAndWaitForSlot(finishing: false) {
        case .ended(let end):
            return end
        case .held(let held):
            setThrottle(0, reason: "the link caught up", observer: observer)
            return pause(into: held.slot, hooks: hooks, holding: true, heldStop: held.stop, heldSince: held.since)
        }
    }

    /// How a wait with every CPU stopped ended.
    private enum Waited {
        /// A slot is free: take the epoch in this blackout.
        case held(Held)
        /// Replication ended (the CPUs run again).
        case ended(ReplicationEnd)
    }

    /// Every CPU held stopped, and the slot it waited for.
    private struct Held {
        var slot: Int
        /// How long the stop took, and when it was asked for.
        var stop: UInt64
        var since: UInt64
    }

    /// Stops every CPU (then calls `stopped` with the time the stop was asked), then waits (they
    /// stay stopped) until a staging slot is free, or, when `finishing` a clean stop, until the
    /// shipping thread is idle with at most the newest epoch left queued (it leaves that one to
    /// the last epoch). A failure of the spare meanwhile resumes the CPUs and ends replication.
    private func stopAndWaitForSlot(finishing: Bool, stopped: (UInt64) -> Void = { _ in }) -> Waited {
        let since = clock.nanoseconds()
        if finishing { shared.withLock { $0.finishing = true } }
        let stop: UInt64
        do {
            stop = try hardware.enterBlackout()
        } catch {
            return .ended(
                ReplicationEnd(reason: .hardwareError, message: "\(error)", lastCommittedEpoch: committedEpoch))
        }
        stopped(since)
        if finishing { cutInFlightShort() }
        while true {
            let seen = toReplicator.generation
            let (free, idle, failure) = shippingState()
            if let failure {
                hardware.leaveBlackout()
                return .ended(spareEnd(failure))
            }
            if let free, idle || !finishing { return .held(Held(slot: free, stop: stop, since: since)) }
            toReplicator.wait(seen: seen, timeoutNanoseconds: 1_000_000)
        }
    }

    /// With every CPU stopped for a clean stop's last epoch, when that epoch is sure to be the
    /// next commit after the one in flight (nothing else queued but the epoch it takes in, and
    /// the dirty frames and that epoch's fit one slot: the CPUs and the DMA engine are stopped, so
    /// the dirty count is the last pause's), tells the spare, so that the commit in flight may
    /// leave the rest of its frames in its journal rather than finish putting them in place while
    /// the CPUs wait for it.
    private func cutInFlightShort() {
        let dirty = hardware.dirtyFrameCount
        let follows = shared.withLock { state -> Bool in
            guard state.shipping, state.queued.count <= 1 else { return false }
            let staged = state.queued.first.map { slots[$0].count } ?? 0
            // As the last pause decides whether it takes the staged epoch in (its harvest finds
            // these very frames: nothing runs, nothing is harvested until then). Were it ever not
            // to, the staged epoch would be committed on its own, left in the journal too, and the
            // last one refused (its half holds the cut one): the stop would fail, the export at
            // the staged epoch, nothing released lost.
            guard staged + dirty <= capacity else { return false }
            state.lastFollows = true
            return true
        }
        if follows { store.lastEpochFollows() }
    }

    /// A free staging slot, whether the shipping thread is idle with at most one epoch queued
    /// (a clean stop's wait is over then: the last epoch takes that one in), and the spare's
    /// failure, if any: what the stop's two waits look at.
    private func shippingState() -> (free: Int?, idle: Bool, failure: SpareStoreError?) {
        shared.withLock { ($0.free.first, $0.queued.count <= 1 && !$0.shipping, $0.failure) }
    }

    /// The last epoch of a clean stop: the epoch being shipped finished, the CPUs running on until
    /// the writers reach their dirty limit (``finishRunning()``), every CPU stopped by then at the
    /// latest, and the last epoch taken in that blackout and
    /// committed on this thread (the shipping thread has ended by then); the machine is left
    /// stopped. The outage of a switch-over runs from that stop, not from the stop's request. An epoch
    /// staged and not yet shipped is taken into the last one, which keeps its number: its frames
    /// and the ones dirtied since, copied from the stopped memory, committed at once (a commit
    /// fewer while nothing runs). When both lists together are more than a slot holds, that
    /// epoch is committed first, then the last. A last pause that fails leaves the staged epoch
    /// uncommitted as well (nothing of it was released).
    private func finalEpoch(hooks: ReplicationHooks, observer: @escaping @Sendable (ReplicationEvent) -> Void)
        -> ReplicationEnd
    {
        let asked = clock.nanoseconds()
        observer(.finishing)
        if let end = finishRunning() { return end }
        let held: Held
        // Said as the CPUs stop (before any wait for a commit still in flight): the outage begins.
        switch stopAndWaitForSlot(
            finishing: true, stopped: { observer(.lastPause(runningMicroseconds: ($0 &- asked) / 1_000)) })
        {
        case .ended(let end): return end
        case .held(let value): held = value
        }
        let ranOn = held.since &- asked
        // The shipping thread is idle and takes no more: it ends now, and this thread ships.
        let (staged, cutShort) = shared.withLock { state -> (Int?, Bool) in
            state.quit = true
            return (state.queued.first, state.lastFollows)
        }
        if let end = pause(
            into: held.slot, hooks: hooks, holding: true, heldStop: held.stop, heldSince: held.since, final: true,
            takingIn: staged)
        {
            return end
        }
        // Taken in: the last epoch is the only one queued.
        let tookIn = staged != nil && shared.withLock { $0.queued.count == 1 }
        var last: EpochReport?
        while let (taken, isLast) = shared.withLock({ state -> (Int, Bool)? in
            guard let index = state.queued.first else { return nil }
            state.queued.removeFirst()
            return (index, state.queued.isEmpty)
        }) {
            do {
                let report = try commitHere(taken, last: isLast, hooks: hooks)
                observer(.epochCommitted(report))
                last = report
            } catch {
                return spareEnd(error)
            }
        }
        guard let last else {
            return ReplicationEnd(
                reason: .hardwareError, message: "the last epoch was not in staging", lastCommittedEpoch: committedEpoch
            )
        }
        let ran = (ranOn + 500_000) / 1_000_000
        let stopped = (clock.nanoseconds() &- held.since + 500_000) / 1_000_000
        let committed = (last.commitMicroseconds + 500) / 1_000
        return ReplicationEnd(
            reason: .stopped,
            message: "stopped: the last epoch, \(last.epoch), committed with every CPU stopped (\(last.frames) frames"
                + (tookIn ? ", with the epoch staged before the stop" : "")
                + ", committed in \(committed) ms; the CPUs stopped \(stopped) ms, after running on \(ran) ms "
                + "while the epochs in flight committed"
                + (cutShort ? ", the last of them told to leave the rest of its frames in the journal" : "") + ")",
            lastCommittedEpoch: last.epoch)
    }

    /// A clean stop's first step, with the CPUs running on: the epoch being shipped (and any
    /// queued behind it but the newest, which the last epoch takes in) commits while the machine
    /// runs, and the shipping thread makes its frames in place stable, so that the CPUs stop
    /// only for the last epoch's own commit. Ends early, for the stop's blackout, once the dirty
    /// set reaches the writers' dirty limit (they would wait there, the machine no longer
    /// running: its outage begins then, and the journal's line says so) or, without a limit,
    /// nears a slot's size. Returns the end of replication if the spare failed meanwhile.
    private func finishRunning() -> ReplicationEnd? {
        shared.withLock { $0.finishing = true }
        let full = limitInForce > 0 ? limitInForce : capacity / 4 * 3
        while true {
            let seen = toReplicator.generation
            let (free, idle, failure) = shippingState()
            if let failure { return spareEnd(failure) }
            if free != nil && idle { return nil }
            let dirty = hardware.dirtyFrameCount
            if dirty >= full { return nil }
            // Near the limit, looked at often: writers parked unseen are a machine not running.
            toReplicator.wait(seen: seen, timeoutNanoseconds: dirty >= full / 2 ? 50_000 : 1_000_000)
        }
    }

    /// One pause into slot `index`: stop (unless `holding` already did), confirm the read-back's
    /// candidates, harvest the epoch's frames, record the writers' sequence, then either mark the
    /// frames pending, resume, and stage them while the writers run (copy-on-write), or stage them
    /// and resume (unless `final`: a clean stop's last epoch is copied with every CPU stopped, as
    /// on machines without copy-on-write); then queue the slot for shipping, every frame in it.
    /// A final epoch `takingIn` the queued slot of that index (staged, not shipped) becomes that
    /// epoch, its frames added, when both lists fit a slot; that slot is then free again.
    /// Returns the end of replication if it failed.
    private func pause(
        into index: Int, hooks: ReplicationHooks, holding: Bool, heldStop: UInt64 = 0, heldSince: UInt64 = 0,
        final: Bool = false, takingIn staged: Int? = nil
    ) -> ReplicationEnd? {
        let slot = slots[index]
        let begun = clock.nanoseconds()
        // CPUs held stopped until a slot was free were paused all that time: it counts.
        let start = holding ? heldSince : begun
        let stop: UInt64
        if holding {
            stop = heldStop
        } else {
            do {
                stop = try hardware.enterBlackout()
            } catch {
                return ReplicationEnd(reason: .hardwareError, message: "\(error)", lastCommittedEpoch: committedEpoch)
            }
        }
        var epoch = nextEpoch
        if let mismatch = confirmCandidates() {
            hardware.leaveBlackout()
            return mismatch
        }
        let harvested: HarvestResult
        do {
            harvested = try hardware.harvest(
                frames: 0..<frameCount, flags: .getAndClear,
                into: UnsafeMutableBufferPointer(rebasing: slot.frames[0..<capacity]))
        } catch {
            hardware.leaveBlackout()
            return ReplicationEnd(
                reason: .hardwareError, message: "epoch \(epoch): \(error)", lastCommittedEpoch: committedEpoch)
        }
        guard harvested.scanEnd >= frameCount, let memory = hardware.activeMemory else {
            hardware.leaveBlackout()
            return ReplicationEnd(
                reason: .stagingOverflow,
                message: "epoch \(epoch): more frames were dirty than remote.staging holds (\(capacity) frames)",
                lastCommittedEpoch: committedEpoch)
        }
        let harvestEnd = clock.nanoseconds()
        slot.count = harvested.reported
        var takenIn = false
        if final, let staged, slot.count + slots[staged].count <= capacity {
            // Its frames hold memory as its pause found it; copied again now, they hold it as
            // the stop does, which is what the last epoch commits. Its pause's hook is called
            // again below, at the stop: its release takes in every store made since.
            let earlier = slots[staged]
            slot.count = Self.mergeAscending(earlier.list, into: slot.frames, count: slot.count)
            epoch = earlier.epoch
            takenIn = true
            shared.withLock {
                $0.queued.removeAll { $0 == staged }
                $0.free.append(staged)
            }
        }
        hooks.paused(epoch)
        slot.epoch = epoch
        slot.pausedAt = start
        slot.stopNanoseconds = stop
        slot.copiedByWriters = 0
        if !final, slot.count > 0, let copyOnWrite = hardware.copyOnWriteStaging {
            // Copy-on-write: the pause only lists the frames as pending; they are copied after
            // the resume, by this thread or by a writer about to store into one.
            copyOnWrite.arm(frames: slot.list, from: memory, into: slot.data)
            for i in 0..<slot.count { stagedEpoch[Int(slot.frames[i])] = epoch }
            hardware.leaveBlackout()
            let resumed = clock.nanoseconds()
            slot.pauseNanoseconds = resumed &- start
            slot.copiedInPause = 0
            hooks.resumed(epoch)
            let stageStart = clock.nanoseconds()
            let copied = copyOnWrite.stagePending()
            slot.stageNanoseconds = clock.nanoseconds() &- stageStart
            slot.copiedByWriters = slot.count - copied
        } else {
            slot.stageNanoseconds = stage(slot, from: memory)
            slot.copiedInPause = slot.count
            if !final { hardware.leaveBlackout() }
            slot.pauseNanoseconds = clock.nanoseconds() &- start
            if !final { hooks.resumed(epoch) }
        }
        // The budget's costs, smoothed: one pause the host took the CPU from must not make the
        // next epochs tiny (or huge). With copy-on-write the copy follows the resume, but the
        // budget still counts it: it bounds how long an epoch's frames stay pending (the writers'
        // window for copies of their own), as it bounded the pause.
        if slot.count >= 64 && slot.copiedByWriters < slot.count / 2 {
            let perFrame = Double(slot.stageNanoseconds) / Double(slot.count)
            stageNanosecondsPerFrame += Self.smoothing * (perFrame - stageNanosecondsPerFrame)
        }
        // The fixed part of a pause: the stop and the harvest (not a hold's wait).
        let harvesting = harvestEnd &- begun
        let overhead = Double(stop + (holding ? harvesting : harvesting &- min(stop, harvesting)))
        pauseOverheadNanoseconds = UInt64(
            Double(pauseOverheadNanoseconds) + Self.smoothing * (overhead - Double(pauseOverheadNanoseconds)))
        if !takenIn { nextEpoch += 1 }
        shared.withLock {
            $0.free.removeAll { $0 == index }
            $0.queued.append(index)
        }
        if !final { toShipper.ring() }
        return nil
    }

    /// Merges the ascending `list` into the ascending `frames[0..<count]`, which has room for
    /// both, each frame once; returns the union's count (its frames at the front of `frames`).
    /// From the end backwards, so that no frame of `frames` is overwritten before it is read.
    package static func mergeAscending(
        _ list: UnsafeBufferPointer<UInt32>, into frames: UnsafeMutableBufferPointer<UInt32>, count: Int
    ) -> Int {
        precondition(count + list.count <= frames.count, "a merge larger than its buffer")
        var i = list.count - 1
        var j = count - 1
        var k = count + list.count - 1
        while i >= 0 || j >= 0 {
            let fromList = i >= 0 ? list[i] : 0
            let fromFrames = j >= 0 ? frames[j] : 0
            let value: UInt32
            if j < 0 || (i >= 0 && fromList > fromFrames) {
                value = fromList
                i -= 1
            } else if i < 0 || fromFrames > fromList {
                value = fromFrames
                j -= 1
            } else {
                value = fromList
                i -= 1
                j -= 1
            }
            frames[k] = value
            k -= 1
        }
        let merged = count + list.count - 1 - k
        if k >= 0, merged > 0, let base = frames.baseAddress {
            memmove(base, base + k + 1, merged * MemoryLayout<UInt32>.stride)
        }
        return merged
    }

    /// Copies the slot's listed frames of `memory` into it and notes the epoch of each; returns
    /// how long that took.
    private func stage(_ slot: StagingSlot, from memory: UnsafeRawPointer) -> UInt64 {
        let start = clock.nanoseconds()
        for i in 0..<slot.count {
            let frame = Int(slot.frames[i])
            memcpy(slot.data + i * frameSize, memory + frame * frameSize, frameSize)
            stagedEpoch[frame] = slot.epoch
        }
        return clock.nanoseconds() &- start
    }

    /// Inside a pause, before its harvest: each frame that differed in a read-back and has not
    /// been written since (not dirty, not staged in a later epoch) is compared again with
    /// nothing running; one that still differs ends replication.
    private func confirmCandidates() -> ReplicationEnd? {
        guard let memory = hardware.activeMemory else { return nil }
        // Under the lock: the shipping thread adds candidates (and their contents) under it.
        let differing = shared.withLock { state -> (frame: Int, epoch: UInt64)? in
            defer { state.candidates.removeAll(keepingCapacity: true) }
            for (i, candidate) in state.candidates.enumerated() {
                if stagedEpoch[candidate.frame] > candidate.epoch { continue }
                let dirty =
                    (try? hardware.harvest(frames: candidate.frame..<(candidate.frame + 1), flags: .get, into: probe))?
                    .reported ?? 1
                if dirty > 0 { continue }
                if memcmp(candidateData + i * frameSize, memory + candidate.frame * frameSize, frameSize) != 0 {
                    return candidate
                }
            }
            return nil
        }
        guard let differing else { return nil }
        return ReplicationEnd(
            reason: .readBackMismatch,
            message: "frame \(differing.frame) read back from \(store.name) differs from memory, though nothing wrote "
                + "it since epoch \(differing.epoch) committed",
            lastCommittedEpoch: committedEpoch)
    }

    /// The writers' dirty limit for a pause's budget within `target`: the budget less what they
    /// may dirty between two looks at the limit, at most ``dirtyLimit``.
    private func budgetLimit(target: UInt64) -> Int {
        min(dirtyLimit, max(Self.minimumDirtyLimit, pauseBudget(target: target) - (hardware.dirtyLimitSlack ?? 0)))
    }

    /// Puts the writers' dirty limit at `frames` when the machine has one and the one in force
    /// is more than an eighth away (each change waits for every writer to see it).
    private func limit(toAbout frames: Int, observer: @Sendable (ReplicationEvent) -> Void) {
        guard dirtyLimit > 0, abs(frames - limitInForce) > limitInForce / 8 else { return }
        hardware.setDirtyLimit(frames)
        limitInForce = frames
        observer(.dirtyLimitChanged(frames: frames, reason: "what a pause may copy within the blackout target"))
    }

    private func setThrottle(_ fraction: Double, reason: String, observer: @Sendable (ReplicationEvent) -> Void) {
        throttle = fraction
        for cpu in 0..<hardware.cpuCount { hardware.setThrottle(cpu: cpu, fraction: min(fraction, 0.99)) }
        observer(.throttleChanged(percent: fraction * 100, reason: reason))
    }

    private func spareEnd(_ error: SpareStoreError) -> ReplicationEnd {
        ReplicationEnd(
            reason: .spareFailed, message: "\(error)", spareError: error, lastCommittedEpoch: committedEpoch)
    }

    // MARK: - Shipping (its own thread)

    private func shipLoop(hooks: ReplicationHooks, observer: @Sendable (ReplicationEvent) -> Void) {
        while true {
            let seen = toShipper.generation
            let next = shared.withLock { state -> (index: Int, behind: Int)?? in
                if state.quit || state.failure != nil { return .some(nil) }
                // Finishing, the newest epoch is left to the last one, which takes it in.
                guard let index = state.queued.first, !(state.finishing && state.queued.count == 1) else { return nil }
                state.queued.removeFirst()
                state.shipping = true
                return (index, state.queued.count)
            }
            guard let next else {
                toShipper.wait(seen: seen, timeoutNanoseconds: 10_000_000)
                continue
            }
            guard let (index, behind) = next else { return }
            let slot = slots[index]
            do {
                var report = try ship(slot, behind: behind)
                hooks.committed(slot.epoch)
                let (finishing, lastFollows) = shared.withLock { ($0.finishing, $0.lastFollows) }
                if finishing {
                    // A clean stop's last epoch follows: no read-back (the last epoch is taken
                    // with nothing running), and this epoch's frames in place made stable now,
                    // while the CPUs may still run, rather than by the last epoch's flush (not
                    // once they stopped for it: the last epoch's flush does it then).
                    if !lastFollows { try store.flush() }
                } else {
                    report.framesReadBack = try readBack(after: slot.epoch)
                }
                shared.withLock {
                    $0.committed = slot.epoch
                    $0.shipping = false
                    $0.free.append(index)
                }
                observer(.epochCommitted(report))
            } catch {
                shared.withLock {
                    $0.failure = error
                    $0.shipping = false
                }
            }
            toReplicator.ring()
        }
    }

    /// Commits the slot's epoch on the spare and reports it.
    private func ship(_ slot: StagingSlot, behind: Int, last: Bool = false) throws(SpareStoreError) -> EpochReport {
        let start = clock.nanoseconds()
        if last {
            try store.commitLast(epoch: slot.epoch, frameList: slot.list, staged: slot.data)
        } else {
            try store.commit(epoch: slot.epoch, frameList: slot.list, staged: slot.data)
        }
        // Its frames in place are stable only at the next commit's flush (a clean stop's last
        // epoch has none: it stays in the journal): kept until then, so that a resync after the
        // spare host lost them sends them again.
        lastCommitted.withLock { last in
            last.count = slot.count
            for i in 0..<slot.count { last.frames[i] = slot.frames[i] }
        }
        let end = clock.nanoseconds()
        let seconds = Double(end &- start) / 1e9
        return EpochReport(
            epoch: slot.epoch, frames: slot.count, pauseMicroseconds: slot.pauseNanoseconds / 1_000,
            stopMicroseconds: slot.stopNanoseconds / 1_000, stageMicroseconds: slot.stageNanoseconds / 1_000,
            commitMicroseconds: (end &- start) / 1_000, lagMicroseconds: (end &- slot.pausedAt) / 1_000,
            epochsBehind: behind, linkBytesPerSecond: seconds > 0 ? Double(slot.count * frameSize) / seconds : 0,
            framesReadBack: 0, framesCopiedInPause: slot.copiedInPause, framesCopiedByWriters: slot.copiedByWriters)
    }

    /// Reads the next window of the spare's image back and compares it with memory; frames that
    /// differ become candidates, confirmed at the next pause. Returns the frames read.
    private func readBack(after epoch: UInt64) throws(SpareStoreError) -> Int {
        guard let memory = hardware.activeMemory else { return 0 }
        let cursor = shared.withLock { $0.readCursor }
        let count = min(Self.readBackFrames, frameCount - cursor)
        // The image may hold an earlier epoch than `epoch` (a standby on the spare host puts them
        // in place): a frame staged after the one it holds is then not a mismatch.
        let held = min(epoch, try store.read(frames: cursor..<(cursor + count), into: readBuffer))
        for i in 0..<count where memcmp(readBuffer + i * frameSize, memory + (cursor + i) * frameSize, frameSize) != 0 {
            // Rare (a frame written since the epoch's pause): kept, with what the spare holds, for
            // the next pause to confirm or explain.
            shared.withLock { state in
                guard state.candidates.count < Self.candidateCapacity else { return }
                memcpy(candidateData + state.candidates.count * frameSize, readBuffer + i * frameSize, frameSize)
                state.candidates.append((cursor + i, held))
            }
        }
        shared.withLock { $0.readCursor = cursor + count >= frameCount ? 0 : cursor + count }
        return count
    }
}
