import MirrorCore
import Testing

@testable import MirrordService

/// The service's life cycle as a table: every (state, event) pair, its next state and effects,
/// without threads, clocks or machines.
@Suite("The service's life cycle: every state against every event")
struct LifecycleMachineTests {
    /// One row: from `from`, `event` leads to `to` with `effects`.
    struct Row: CustomTestStringConvertible {
        var from: ServiceState
        var event: LifecycleEvent
        var to: ServiceState
        var effects: [LifecycleEffect]
        /// A failover waiting for a duplex when the row starts.
        var pending: ModuleFault? = nil
        var testDescription: String { "\(from.name) + \(LifecycleMachineTests.kind(of: event))" }
    }

    static let tolerance = FaultTolerancePolicy()
    /// The active module loses a frame.
    static let activeFault = ModuleFault(.uncorrectable, module: .active, frame: 7)
    /// The spare module is lost.
    static let spareFault = ModuleFault(.lost, module: .spare)
    static let duplexedSummary: DuplexSummary = {
        var summary = DuplexSummary(
            backend: "test", geometry: MemoryGeometry(frameSize: 4096, frameCount: 16), thresholdFrames: 1,
            policy: DuplexPolicy())
        summary.outcome = .duplexed(.threshold)
        summary.finalState = .duplexed
        summary.message = "duplexed"
        return summary
    }()
    static let failedSummary: DuplexSummary = {
        var summary = duplexedSummary
        summary.outcome = .failed(.verifyMismatch)
        summary.finalState = .failed
        summary.message = "verify failed in lockstep: 1 frame differ"
        return summary
    }()
    static let replicatingSummary: DuplexSummary = {
        var summary = duplexedSummary
        summary.outcome = .replicating(.threshold)
        summary.finalState = .replicating
        summary.spareName = "nbd://backup/spare"
        summary.message = "replicating"
        return summary
    }()
    static let unreachableSummary: DuplexSummary = {
        var summary = duplexedSummary
        summary.outcome = .failed(.spareUnreachable)
        summary.finalState = .failed
        summary.message = "full copy to nbd://backup/spare: timed out"
        return summary
    }()
    static let failedSyncSummary: DuplexSummary = {
        var summary = unreachableSummary
        summary.outcome = .failed(.spareFailed)
        summary.message = "begin a sync on nbd://backup/spare: the standby did not acknowledge the new sync"
        return summary
    }()
    static let refusedSyncSummary: DuplexSummary = {
        var summary = unreachableSummary
        summary.outcome = .failed(.spareRefused)
        summary.message = "reconnect to nbd://backup/spare: owned by another primary"
        return summary
    }()
    static let lostEnd = ReplicationEnd(
        reason: .spareFailed, message: "commit epoch 9: timed out",
        spareError: SpareStoreError(.unreachable, operation: "commit epoch 9", reason: "timed out"),
        lastCommittedEpoch: 8)
    static let refusedEnd = ReplicationEnd(
        reason: .spareFailed, message: "reconnect: owned by another primary",
        spareError: SpareStoreError(.refused, operation: "reconnect", reason: "owned by another primary"),
        lastCommittedEpoch: 8)
    static let mismatchEnd = ReplicationEnd(
        reason: .readBackMismatch, message: "frame 7 read back differs", lastCommittedEpoch: 8)
    static let stoppedEnd = ReplicationEnd(reason: .stopped, message: "stopped", lastCommittedEpoch: 9)
    static let verify = DuplexSummary.Verify(
        framesChecked: 16, mismatches: 2, firstMismatches: [3, 4], candidates: 2, durationMicroseconds: 1)

    /// The fault event of `fault` with a spare installed or not.
    static func fault(_ fault: ModuleFault, hasSpare: Bool = true) -> LifecycleEvent {
        .fault(fault, hasSpare: hasSpare, now: 1_000, tolerance: tolerance)
    }

    /// What ``FaultResponse`` says is lost for `fault` in `state`.
    static func lost(_ fault: ModuleFault, in state: LifecycleState) -> String {
        guard case .fatal(let what) = FaultResponse.decide(fault, failing: true, state: state, hasSpare: true) else {
            preconditionFailure("not fatal")
        }
        return what
    }

    static let duplexing = ServiceState.duplexing(.init(first: true))
    static let later = ServiceState.duplexing(.init(first: false))
    static let simplex = ServiceState.simplex(.failedOver(activeFault))
    static let stopping = ServiceState.stopping(from: .duplexed)
    static let failed = ServiceState.failed(.memoryLost("gone"))
    static let replicating = ServiceState.replicating(.init(spare: "nbd://backup/spare"))

    /// The table. Events that a state does not answer leave it as it is, with no effect.
    static let rows: [Row] = {
        let a = activeFault
        let s = spareFault
        let removeSpare = { (state: LifecycleState, during: Bool) -> [LifecycleEffect] in
            [.removeSpare(s), .report(.spareRemoved(s, duringDuplex: during, state: state)), .expectReplacement]
        }
        let lose = { (state: LifecycleState) -> [LifecycleEffect] in
            [.report(.memoryLost(a, what: lost(a, in: state))), .fail(lost(a, in: state))]
        }
        let install: [LifecycleEffect] = [.report(.spareInstalled(autoReduplex: true)), .reduplexWhenReady]
        let states: [ServiceState] = [.starting, duplexing, .duplexed, replicating, simplex, stopping, failed]
        var rows: [Row] = [
            // startFailed: while starting, …
            Row(
                from: .starting, event: .startFailed("no threads"), to: .failed(.couldNotStart("no threads")),
                effects: []),
            // … or once a takeover's CPUs ran, its image not made durable.
            Row(
                from: .simplex(.tookOver(epoch: 7, source: "/srv/spare.img")), event: .startFailed("not flushed"),
                to: .failed(.couldNotStart("not flushed")), effects: []),
            // shutdownRequested: every running state stops; a stop or a failure stays.
            Row(from: .starting, event: .shutdownRequested, to: .stopping(from: .starting), effects: [.stopEngine]),
            Row(from: duplexing, event: .shutdownRequested, to: .stopping(from: duplexing), effects: [.stopEngine]),
            Row(from: .duplexed, event: .shutdownRequested, to: .stopping(from: .duplexed), effects: [.stopEngine]),
            Row(from: simplex, event: .shutdownRequested, to: .stopping(from: simplex), effects: [.stopEngine]),
            Row(
                from: replicating, event: .shutdownRequested, to: .stopping(from: replicating), effects: [.stopEngine]),
            Row(from: stopping, event: .shutdownRequested, to: stopping, effects: []),
            Row(from: failed, event: .shutdownRequested, to: failed, effects: []),
            // duplexStarted: from starting (the first) or simplex (a later one).
            Row(from: .starting, event: .duplexStarted, to: duplexing, effects: []),
            Row(from: simplex, event: .duplexStarted, to: later, effects: []),
            Row(from: .stopping(from: simplex), event: .duplexStarted, to: .stopping(from: later), effects: []),
            // duplexEnded: duplexed, failed, or left to the faults it ended on.
            Row(
                from: duplexing, event: .duplexEnded(duplexedSummary), to: .duplexed,
                effects: [.report(.duplexFinished(duplexedSummary, reduplexed: false))]),
            Row(
                from: later, event: .duplexEnded(duplexedSummary), to: .duplexed,
                effects: [.report(.duplexFinished(duplexedSummary, reduplexed: true))]),
            Row(
                from: duplexing, event: .duplexEnded(duplexedSummary),
                to: .duplexed, effects: [.report(.duplexFinished(duplexedSummary, reduplexed: false)), .failOver(a)],
                pending: a),
            Row(
                from: duplexing, event: .duplexEnded(failedSummary), to: .failed(.duplexFailed(failedSummary.message)),
                effects: [.report(.duplexFinished(failedSummary, reduplexed: false))]),
            Row(from: simplex, event: .duplexEnded(failedSummary), to: simplex, effects: []),
            Row(from: replicating, event: .duplexEnded(failedSummary), to: replicating, effects: []),
            // A duplex to a spare on another host ends replicating; one whose spare host went away
            // (it answered at start) leaves the pair simplex, to try again.
            Row(
                from: duplexing, event: .duplexEnded(replicatingSummary), to: replicating,
                effects: [.report(.duplexFinished(replicatingSummary, reduplexed: false))]),
            Row(
                from: later, event: .duplexEnded(unreachableSummary),
                to: .simplex(.spareHostLost(reason: unreachableSummary.message)),
                effects: [
                    .report(.spareHostLost(reason: unreachableSummary.message, duringSync: true)), .resyncLater,
                ]),
            Row(
                from: duplexing, event: .duplexEnded(unreachableSummary),
                to: .simplex(.spareHostLost(reason: unreachableSummary.message)),
                effects: [
                    .report(.spareHostLost(reason: unreachableSummary.message, duringSync: true)), .resyncLater,
                ]),
            // A sync the spare host failed (a standby not answering yet): the machine runs on,
            // simplex, and tries again; one it refused (another host owns the export) ends it.
            Row(
                from: duplexing, event: .duplexEnded(failedSyncSummary),
                to: .simplex(.spareHostLost(reason: failedSyncSummary.message)),
                effects: [
                    .report(.spareHostLost(reason: failedSyncSummary.message, duringSync: true, unreachable: false)),
                    .resyncLater,
                ]),
            Row(
                from: duplexing, event: .duplexEnded(refusedSyncSummary),
                to: .failed(.duplexFailed(refusedSyncSummary.message)),
                effects: [.report(.duplexFinished(refusedSyncSummary, reduplexed: false))]),
            // replicationEnded: the spare host lost while replicating; a clean stop changes nothing.
            Row(
                from: replicating, event: .replicationEnded(lostEnd),
                to: .simplex(.spareHostLost(reason: lostEnd.message)),
                effects: [.report(.spareHostLost(reason: lostEnd.message, duringSync: false)), .resyncLater]),
            Row(
                from: .stopping(from: replicating), event: .replicationEnded(stoppedEnd),
                to: .stopping(from: replicating),
                effects: []),
            // Refused (another host owns the export now): no retry; a read-back mismatch: retried,
            // not called unreachable.
            Row(
                from: replicating, event: .replicationEnded(refusedEnd),
                to: .failed(.duplexFailed("the spare host refused replication: \(refusedEnd.message)")),
                effects: [
                    .report(.spareHostLost(reason: refusedEnd.message, duringSync: false, unreachable: false)),
                    .fail("the spare host refused replication: \(refusedEnd.message)"),
                ]),
            Row(
                from: replicating, event: .replicationEnded(mismatchEnd),
                to: .simplex(.spareHostLost(reason: mismatchEnd.message)),
                effects: [
                    .report(.spareHostLost(reason: mismatchEnd.message, duringSync: false, unreachable: false)),
                    .resyncLater,
                ]),
            // A fault of the local spare module while the spare is on another host: only noted.
            Row(from: replicating, event: fault(s), to: replicating, effects: [.report(.faultNoted(s))]),
            Row(from: replicating, event: .duplexStarted, to: replicating, effects: []),
            Row(from: replicating, event: .startFailed("x"), to: replicating, effects: []),
            Row(
                from: replicating, event: fault(a), to: .failed(.memoryLost(lost(a, in: .simplex))),
                effects: lose(.simplex)),
            Row(from: replicating, event: .failedOver(a, microseconds: 1), to: replicating, effects: []),
            Row(from: replicating, event: .scrubDiffered(verify, autoReduplex: true), to: replicating, effects: []),
            Row(from: replicating, event: .scrubFailed("x"), to: replicating, effects: []),
            // A fault on the active module: fail over when duplexed, else memory is lost.
            Row(
                from: .starting, event: fault(a), to: .failed(.memoryLost(lost(a, in: .duplexing))),
                effects: lose(.duplexing)),
            Row(
                from: duplexing, event: fault(a), to: .failed(.memoryLost(lost(a, in: .duplexing))),
                effects: lose(.duplexing)),
            Row(from: .duplexed, event: fault(a), to: .duplexed, effects: [.failOver(a)]),
            Row(
                from: simplex, event: fault(a), to: .failed(.memoryLost(lost(a, in: .simplex))), effects: lose(.simplex)
            ),
            Row(from: stopping, event: fault(a), to: stopping, effects: [.failOver(a)]),
            Row(from: failed, event: fault(a), to: failed, effects: [.report(.faultNoted(a))]),
            // A fault on the spare: removed (a duplex aborted), or moot without one.
            Row(
                from: duplexing, event: fault(s), to: .simplex(.spareFailed(s, duringDuplex: true)),
                effects: removeSpare(.duplexing, true)),
            Row(
                from: .duplexed, event: fault(s), to: .simplex(.spareFailed(s, duringDuplex: false)),
                effects: removeSpare(.duplexed, false)),
            Row(from: simplex, event: fault(s, hasSpare: false), to: simplex, effects: [.report(.faultNoted(s))]),
            // failedOver / failoverFailed: the outcome of a failover asked for while duplexed.
            Row(
                from: .duplexed, event: .failedOver(a, microseconds: 120), to: .simplex(.failedOver(a)),
                effects: [.report(.failedOver(a, microseconds: 120)), .expectReplacement]),
            Row(
                from: stopping, event: .failedOver(a, microseconds: 120), to: .stopping(from: .simplex(.failedOver(a))),
                effects: [.report(.failedOver(a, microseconds: 120)), .expectReplacement]),
            // scrubDiffered / scrubFailed: only in lockstep.
            Row(
                from: .duplexed, event: .scrubDiffered(verify, autoReduplex: true),
                to: .simplex(.spareSuspect(mismatches: 2)),
                effects: [.dropLockstep, .report(.spareSuspect(verify, autoReduplex: true)), .reduplexWhenReady]),
            Row(
                from: .duplexed, event: .scrubDiffered(verify, autoReduplex: false),
                to: .simplex(.spareSuspect(mismatches: 2)),
                effects: [.dropLockstep, .report(.spareSuspect(verify, autoReduplex: false))]),
            Row(
                from: .duplexed, event: .scrubFailed("EIO"),
                to: .failed(.scrubFailed("lockstep cannot be checked: EIO")),
                effects: [
                    .report(.scrubFailed("lockstep cannot be checked: EIO")), .fail("lockstep cannot be checked: EIO"),
                ]),
            // reduplexRequested: only simplex with a spare installed.
            Row(from: simplex, event: .reduplexRequested(hasSpare: true), to: simplex, effects: [.reduplexWhenReady]),
            Row(
                from: simplex, event: .reduplexRequested(hasSpare: false), to: simplex,
                effects: [.report(.reduplexRefused("no spare module is installed"))]),
        ]
        // tookOver: a takeover's start, only from starting: simplex, no spare to duplex to.
        let tookOver = LifecycleEvent.tookOver(
            epoch: 5123, framesReplayed: 40, milliseconds: 12.5, source: "/srv/spare.img")
        let tookOverReport: [LifecycleEffect] = [
            .report(.tookOver(epoch: 5123, framesReplayed: 40, milliseconds: 12.5, source: "/srv/spare.img"))
        ]
        let takenOver = ServiceState.simplex(.tookOver(epoch: 5123, source: "/srv/spare.img"))
        rows.append(Row(from: .starting, event: tookOver, to: takenOver, effects: tookOverReport))
        rows.append(
            Row(
                from: .stopping(from: .starting), event: tookOver, to: .stopping(from: takenOver),
                effects: tookOverReport))
        for state in [duplexing, .duplexed, replicating, simplex, stopping, failed] {
            rows.append(Row(from: state, event: tookOver, to: state, effects: []))
        }
        // failoverFailed, from any state: memory is lost.
        for state in states {
            let what = "failover to the spare failed (EIO) after \(a)"
            rows.append(
                Row(
                    from: state, event: .failoverFailed(a, "EIO"), to: .failed(.memoryLost(what)),
                    effects: [.report(.memoryLost(a, what: what)), .fail(what)]))
        }
        // spareInstalled: counted in any state; a duplex follows when ready.
        for state in states {
            rows.append(Row(from: state, event: .spareInstalled(autoReduplex: true), to: state, effects: install))
        }
        // The bookkeeping of --once changes no state.
        for state in states {
            rows.append(Row(from: state, event: .replacementScheduled, to: state, effects: []))
            rows.append(Row(from: state, event: .drillRaised, to: state, effects: []))
        }
        for state in [ServiceState.starting, duplexing, .duplexed, simplex, stopping, failed] {
            rows.append(Row(from: state, event: .replicationEnded(lostEnd), to: state, effects: []))
        }
        // What a state does not answer: a start failure after the start, a duplex that is not due,
        // a failover, scrub or re-duplex outside their states.
        let unanswered: [(ServiceState, LifecycleEvent)] = [
            (duplexing, .startFailed("x")), (.duplexed, .startFailed("x")), (simplex, .startFailed("x")),
            (stopping, .startFailed("x")), (failed, .startFailed("x")),
            (duplexing, .duplexStarted), (.duplexed, .duplexStarted), (failed, .duplexStarted),
            (stopping, .duplexStarted),
            (.starting, .duplexEnded(duplexedSummary)), (.duplexed, .duplexEnded(duplexedSummary)),
            (failed, .duplexEnded(duplexedSummary)), (stopping, .duplexEnded(duplexedSummary)),
            (.starting, .failedOver(a, microseconds: 1)), (duplexing, .failedOver(a, microseconds: 1)),
            (simplex, .failedOver(a, microseconds: 1)), (failed, .failedOver(a, microseconds: 1)),
            (.starting, .scrubDiffered(verify, autoReduplex: true)),
            (duplexing, .scrubDiffered(verify, autoReduplex: true)),
            (simplex, .scrubDiffered(verify, autoReduplex: true)), (failed, .scrubDiffered(verify, autoReduplex: true)),
            (.starting, .scrubFailed("x")), (duplexing, .scrubFailed("x")), (simplex, .scrubFailed("x")),
            (failed, .scrubFailed("x")),
        ]
        for (state, event) in unanswered { rows.append(Row(from: state, event: event, to: state, effects: [])) }
        for state in [ServiceState.starting, duplexing, .duplexed, replicating, failed] {
            rows.append(
                Row(
                    from: state, event: .reduplexRequested(hasSpare: true), to: state,
                    effects: [.report(.reduplexRefused("the pair is \(state.name.rawValue), not simplex"))]))
        }
        rows.append(
            Row(
                from: stopping, event: .scrubDiffered(verify, autoReduplex: false),
                to: .stopping(from: .simplex(.spareSuspect(mismatches: 2))),
                effects: [.dropLockstep, .report(.spareSuspect(verify, autoReduplex: false))]))
        rows.append(
            Row(
                from: stopping, event: .scrubFailed("x"), to: .failed(.scrubFailed("lockstep cannot be checked: x")),
                effects: [
                    .report(.scrubFailed("lockstep cannot be checked: x")), .fail("lockstep cannot be checked: x"),
                ]))
        rows.append(
            Row(
                from: stopping, event: .reduplexRequested(hasSpare: true), to: stopping,
                effects: [.report(.reduplexRefused("the pair is duplexed, not simplex"))]))
        return rows
    }()

    /// The kind of `event`, without its data.
    static func kind(of event: LifecycleEvent) -> String {
        switch event {
        case .startFailed: "startFailed"
        case .tookOver: "tookOver"
        case .shutdownRequested: "shutdownRequested"
        case .duplexStarted: "duplexStarted"
        case .duplexEnded: "duplexEnded"
        case .fault: "fault"
        case .failedOver: "failedOver"
        case .failoverFailed: "failoverFailed"
        case .scrubDiffered: "scrubDiffered"
        case .scrubFailed: "scrubFailed"
        case .spareInstalled: "spareInstalled"
        case .reduplexRequested: "reduplexRequested"
        case .replacementScheduled: "replacementScheduled"
        case .drillRaised: "drillRaised"
        case .replicationEnded: "replicationEnded"
        }
    }

    static let eventKinds = [
        "startFailed", "tookOver", "shutdownRequested", "duplexStarted", "duplexEnded", "fault", "failedOver",
        "failoverFailed",
        "scrubDiffered", "scrubFailed", "spareInstalled", "reduplexRequested", "replacementScheduled", "drillRaised",
        "replicationEnded",
    ]

    @Test("each row: the next state and the effects, in order", arguments: rows)
    func row(_ row: Row) {
        var snapshot = LifecycleSnapshot(tolerance: Self.tolerance, drillArmed: false)
        snapshot.state = row.from
        snapshot.pendingFailover = row.pending
        // A service past its start has run its first duplex.
        snapshot.history.duplexes = row.from == .starting ? 0 : 1
        let (next, effects) = LifecycleMachine.transition(snapshot, on: row.event)
        #expect(next.state == row.to)
        #expect(effects == row.effects)
    }

    @Test("the table walks every state against every event")
    func complete() {
        let covered = Set(Self.rows.map { "\($0.from.name.rawValue) + \(Self.kind(of: $0.event))" })
        for name in ServiceState.Name.allCases {
            for kind in Self.eventKinds {
                #expect(covered.contains("\(name.rawValue) + \(kind)"), "no row for \(name.rawValue) + \(kind)")
            }
        }
    }

    @Test("the history counts what happened: duplexes, duplexed, spares removed and installed, failovers, lost")
    func history() {
        var s = LifecycleSnapshot(tolerance: Self.tolerance, drillArmed: true)
        #expect(!s.drillRaised && s.record.state == .duplexing)
        for event: LifecycleEvent in [
            .duplexStarted, .duplexEnded(Self.duplexedSummary), Self.fault(Self.spareFault), .replacementScheduled,
            .spareInstalled(autoReduplex: true), .duplexStarted, .duplexEnded(Self.duplexedSummary),
            .failedOver(Self.activeFault, microseconds: 9), .drillRaised, Self.fault(Self.activeFault),
        ] {
            s = LifecycleMachine.transition(s, on: event).0
        }
        let record = s.record
        #expect(record.duplexes == 2 && record.duplexed == 2)
        #expect(record.sparesRemoved == 1 && record.sparesInstalled == 1)
        #expect(record.failovers == [.init(fault: Self.activeFault.description, blackoutMicroseconds: 9)])
        #expect(record.faults == [Self.spareFault.description, Self.activeFault.description])
        #expect(record.lost == Self.lost(Self.activeFault, in: .simplex) && record.state == .failed)
        #expect(s.drillRaised && !s.replacementPending, "the re-duplex ended the wait for the replacement")
    }

    /// The active module loses frame 100, and the whole active module, in either order.
    static let lossOrders: [[ModuleFault]] = [
        [ModuleFault(.uncorrectable, module: .active, frame: 100), ModuleFault(.lost, module: .active)],
        [ModuleFault(.lost, module: .active), ModuleFault(.uncorrectable, module: .active, frame: 100)],
    ]

    @Test(
        "a frame and the whole module lost in one batch during the full copy: the final report names the whole loss",
        arguments: lossOrders, [duplexing, simplex])
    func worstLoss(faults: [ModuleFault], from: ServiceState) {
        var s = LifecycleSnapshot(tolerance: Self.tolerance, drillArmed: false)
        s.state = from
        s.history.duplexes = 1
        let whole = faults.first { $0.kind == .lost }!
        let frame = faults.first { $0.kind == .uncorrectable }!
        let wholeLoss = Self.lost(whole, in: from.pairState)
        var effects: [[LifecycleEffect]] = []
        for fault in faults {
            let (next, done) = LifecycleMachine.transition(s, on: Self.fault(fault))
            s = next
            effects.append(done)
        }
        #expect(wholeLoss.hasSuffix("the machine's memory is lost"))
        #expect(s.state == .failed(.memoryLost(wholeLoss)), "the state names the worst loss")
        #expect(s.history.lost == wholeLoss && s.record.lost == wholeLoss)
        #expect(s.history.faults == faults.map(\.description), "every fault is in the history")
        if faults[0] == frame {
            // The frame first: its loss, then the whole module's in its place, each ending the service.
            let frameLoss = Self.lost(frame, in: from.pairState)
            #expect(effects[0] == [.report(.memoryLost(frame, what: frameLoss)), .fail(frameLoss)])
            #expect(effects[1] == [.report(.memoryLost(whole, what: wholeLoss)), .fail(wholeLoss)])
        } else {
            // The whole module first: the frame after it loses nothing more.
            #expect(effects[0] == [.report(.memoryLost(whole, what: wholeLoss)), .fail(wholeLoss)])
            #expect(effects[1] == [.report(.faultNoted(frame))])
        }
    }

    @Test("after a lost frame a correctable error or a spare's loss is only noted; the loss stays the frame's")
    func lesserAfterLoss() {
        var s = LifecycleSnapshot(tolerance: Self.tolerance, drillArmed: false)
        s.state = Self.duplexing
        let frame = ModuleFault(.uncorrectable, module: .active, frame: 100)
        s = LifecycleMachine.transition(s, on: Self.fault(frame)).0
        let frameLoss = Self.lost(frame, in: .duplexing)
        for fault in [
            ModuleFault(.lost, module: .spare), ModuleFault(.uncorrectable, module: .active, frame: 200),
        ] {
            let (next, effects) = LifecycleMachine.transition(s, on: Self.fault(fault))
            s = next
            #expect(effects == [.report(.faultNoted(fault))])
        }
        #expect(s.state == .failed(.memoryLost(frameLoss)) && s.history.lost == frameLoss)
    }

    @Test("correctable errors are counted; at the limit during a duplex the failover waits for it, then follows it")
    func predictedFailure() {
        var tolerance = FaultTolerancePolicy()
        tolerance.correctableLimit = 2
        let error = ModuleFault(.correctable, module: .active, frame: 1)
        var s = LifecycleSnapshot(tolerance: tolerance, drillArmed: false)
        s.state = Self.duplexing
        var effects: [LifecycleEffect]
        (s, effects) = LifecycleMachine.transition(s, on: .fault(error, hasSpare: true, now: 10, tolerance: tolerance))
        #expect(effects == [.report(.correctable(error, count: 1, limit: 2, failing: false))])
        (s, effects) = LifecycleMachine.transition(s, on: .fault(error, hasSpare: true, now: 20, tolerance: tolerance))
        #expect(effects == [.report(.correctable(error, count: 2, limit: 2, failing: true))])
        #expect(s.state == .duplexing(.init(first: true)) && s.pendingFailover == error)
        (s, effects) = LifecycleMachine.transition(s, on: .duplexEnded(Self.duplexedSummary))
        #expect(s.state == .duplexed && effects.last == .failOver(error))
    }

    @Test("a predicted failure outlives an aborted duplex: the replacement's duplex is followed by the failover")
    func predictedFailureOutlivesAbort() {
        var tolerance = FaultTolerancePolicy()
        tolerance.correctableLimit = 1
        let error = ModuleFault(.correctable, module: .active, frame: 1)
        var s = LifecycleSnapshot(tolerance: tolerance, drillArmed: false)
        for event: LifecycleEvent in [
            .duplexStarted, .fault(error, hasSpare: true, now: 10, tolerance: tolerance), Self.fault(Self.spareFault),
            .duplexEnded(Self.failedSummary), .spareInstalled(autoReduplex: true), .duplexStarted,
        ] {
            s = LifecycleMachine.transition(s, on: event).0
        }
        #expect(s.pendingFailover == error, "the spare's failure aborted the duplex, not the prediction")
        let (after, effects) = LifecycleMachine.transition(s, on: .duplexEnded(Self.duplexedSummary))
        #expect(after.state == .duplexed && effects.last == .failOver(error) && after.pendingFailover == nil)
    }
}
