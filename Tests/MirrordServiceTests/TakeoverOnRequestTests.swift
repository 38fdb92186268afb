import Dispatch
import Foundation
import MirrordControl
import Synchronization
import Testing

@testable import MirrordService

/// A takeover waiting to be asked: what its control socket answers while it waits, and a
/// `take-over` whose reply waits for the runner's outcome, driven on two threads with no sleep.
@Suite("Takeover on request: the wait, the request, the reply that waits for the outcome")
struct TakeoverOnRequestTests {
    let gate = TakeoverOnRequest(source: "/srv/export.img", configuration: ["memory.size": "\"64MiB\""])

    /// A `take-over` reply, once it comes, from the thread that waits for it.
    final class PendingReply: Sendable {
        let reply = Mutex<ControlReply?>(nil)
        let done = DispatchSemaphore(value: 0)

        /// The reply once it came; nil when none came within a minute (a hang detector, not a
        /// timing).
        func received() -> ControlReply? {
            guard done.wait(timeout: .now() + .seconds(60)) == .success else { return nil }
            return reply.withLock { $0 }
        }
    }

    /// What `status` answers with, when it is a status.
    func status() -> StatusReply? {
        if case .status(let status) = gate.reply(to: .status) { return status }
        return nil
    }

    /// `take-over` (saying `request`) sent on a thread of its own, as the control server's.
    func askOnAnotherThread(_ request: TakeoverRequest = TakeoverRequest()) -> PendingReply {
        askOnAnotherThread(gate, request)
    }

    /// `take-over` (saying `request`) sent to `gate` on a thread of its own.
    func askOnAnotherThread(_ gate: TakeoverOnRequest, _ request: TakeoverRequest) -> PendingReply {
        let pending = PendingReply()
        Thread.detachNewThread {
            let reply = gate.reply(to: .takeOver(request))
            pending.reply.withLock { $0 = reply }
            pending.done.signal()
        }
        return pending
    }

    @Test("while it waits: status says waiting and names the export; an action is refused")
    func waiting() throws {
        let reply = try #require(status())
        #expect(reply.state == .waiting)
        #expect(reply.status == "waiting to take over from /srv/export.img (mirrorctl take-over)")
        #expect(reply.configuration["memory.size"] == "\"64MiB\"")
        guard case .refused(let refusal) = gate.reply(to: .scrub) else {
            Issue.record("scrub was not refused")
            return
        }
        #expect(refusal.error.contains("no machine runs here yet"))
    }

    @Test("take-over: the runner is woken, and the reply waits for its outcome (the CPUs running)")
    func tookOver() {
        let asked = askOnAnotherThread()
        // Generous: a hang detector, not a timing.
        let at = gate.waitForRequest(pollNanoseconds: 1_000_000) { false }
        #expect(at != nil)
        // Not answered yet: the reply is still waiting.
        #expect(asked.done.wait(timeout: .now()) == .timedOut)
        gate.tookOver("took over from epoch 7 of /srv/export.img: 3 frames replayed, takeover_ms 2.0")
        #expect(
            asked.received()
                == .acknowledged(
                    ControlAcknowledgement(
                        action: .takeOver,
                        what: "took over from epoch 7 of /srv/export.img: 3 frames replayed, takeover_ms 2.0")))
        // Once is all: a second request is refused at once.
        guard case .refused(let again) = gate.reply(to: .takeOver(TakeoverRequest())) else {
            Issue.record("a second take-over was not refused")
            return
        }
        #expect(again.error.contains("asked for already"))
    }

    @Test("take-over refused: the reply carries the runner's reason; a later answer changes nothing")
    func refused() {
        let asked = askOnAnotherThread()
        #expect(gate.waitForRequest(pollNanoseconds: 1_000_000) { false } != nil)
        gate.refused("takeover refused: /srv/export.img: the export holds no committed epoch")
        gate.tookOver("too late")
        #expect(
            asked.received()
                == .refused(
                    ControlRefusal(error: "takeover refused: /srv/export.img: the export holds no committed epoch")))
    }

    @Test("not known to be the newest: refused with that reason, and it waits for the request asked again")
    func notKnownNewest() throws {
        let record = "/var/lib/mirrord/export.img.machine-started"
        let first = askOnAnotherThread(TakeoverRequest(startRecord: record))
        let asked = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        #expect(asked.request == TakeoverRequest(startRecord: record, compared: false))
        gate.notKnownNewest("take-over: this host's export is not known to be the newest")
        #expect(
            first.received()
                == .refused(
                    ControlRefusal(
                        error: "take-over: this host's export is not known to be the newest", reason: .notKnownNewest)))
        #expect(status()?.state == .waiting)
        let second = askOnAnotherThread(TakeoverRequest(startRecord: record, compared: true))
        #expect(gate.waitForRequest(pollNanoseconds: 1_000_000) { false }?.request.compared == true)
        gate.tookOver("took over")
        #expect(second.received() == .acknowledged(ControlAcknowledgement(action: .takeOver, what: "took over")))
    }

    @Test(
        "once asked, status says starting; closed (the process stops), a pending request is refused, and any later one at once"
    )
    func closed() throws {
        let pending = askOnAnotherThread()
        _ = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        #expect(status()?.state == .starting)
        gate.close()
        #expect(
            pending.received()
                == .refused(ControlRefusal(error: "mirrord is stopping: nothing was taken over")))
        #expect(
            gate.reply(to: .takeOver(TakeoverRequest()))
                == .refused(ControlRefusal(error: "mirrord is stopping: nothing was taken over")))
    }

    /// A gate with a go FIFO, whose go lines ask with `record` as their start record.
    static func toldGate(record: String = "/var/lib/mirrord/export.img.machine-started", goReadSeconds: Int = 60)
        -> TakeoverOnRequest
    {
        TakeoverOnRequest(
            source: "/srv/export.img", configuration: [:], goRequest: TakeoverRequest(startRecord: record),
            goReadSeconds: goReadSeconds)
    }

    /// A gate with a go FIFO whose line `go token` was read and taken in by the runner.
    static func askedByGo(_ token: String) throws -> TakeoverOnRequest {
        let gate = toldGate()
        gate.go(token)
        _ = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        return gate
    }

    /// The reply to `take-over` naming the go line `token`, sent to `gate` on this thread.
    static func collect(_ token: String, from gate: TakeoverOnRequest) -> ControlReply {
        gate.reply(to: .takeOver(TakeoverRequest(told: token)))
    }

    /// Returns once `condition` holds (another thread's wait has begun), yielding meanwhile; false
    /// after a minute (a hang detector, not a timing).
    static func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = DispatchTime.now() + .seconds(60)
        while !condition() {
            guard DispatchTime.now() < deadline else { return false }
            sched_yield()
        }
        return true
    }

    /// `take-over --told token` sent to `gate` on a thread of its own, as the control server's.
    static func collectOnAnotherThread(_ gate: TakeoverOnRequest, token: String) -> PendingReply {
        let pending = PendingReply()
        Thread.detachNewThread {
            let reply = gate.reply(to: .takeOver(TakeoverRequest(told: token)))
            pending.reply.withLock { $0 = reply }
            pending.done.signal()
        }
        return pending
    }

    @Test("told: a go line asks what the go FIFO's start says; take-over told collects the outcome, before or after it")
    func told() throws {
        let gate = Self.toldGate()
        // Sent before the go is read (a go written, not yet read): it waits for that go's outcome.
        let early = Self.collectOnAnotherThread(gate, token: "4711-523.17")
        #expect(Self.eventually { gate.goWaits.collectors == 1 })
        gate.go("4711-523.17")
        let asked = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        #expect(asked.request == TakeoverRequest(startRecord: "/var/lib/mirrord/export.img.machine-started"))
        if case .status(let status) = gate.reply(to: .status) { #expect(status.state == .starting) }
        #expect(early.done.wait(timeout: .now()) == .timedOut)
        gate.tookOver("took over from epoch 9")
        let tookOver = ControlReply.acknowledged(
            ControlAcknowledgement(action: .takeOver, what: "took over from epoch 9"))
        #expect(early.received() == tookOver)
        // Sent after (the client started ahead was slow): answered at once, and again.
        #expect(Self.collect("4711-523.17", from: gate) == tookOver)
        // A go read once a takeover is under way or over asks nothing; its outcome says why.
        gate.go("4712-530.02")
        #expect(
            Self.collect("4712-530.02", from: gate)
                == .refused(ControlRefusal(error: "a takeover was asked for already: it is under way or over")))
    }

    @Test("told, not known newest: the go's outcome carries the reason, and a take-over asked next waits for its own")
    func toldNotKnownNewest() throws {
        let gate = try Self.askedByGo("a1")
        gate.notKnownNewest("take-over: this host's export is not known to be the newest")
        #expect(
            Self.collect("a1", from: gate)
                == .refused(
                    ControlRefusal(
                        error: "take-over: this host's export is not known to be the newest", reason: .notKnownNewest)))
        // Waiting again: asked with `compared` over the socket, whose reply waits for its outcome
        // (no answer to the go line wakes it).
        let second = askOnAnotherThread(gate, TakeoverRequest(startRecord: "/r", compared: true))
        #expect(gate.waitForRequest(pollNanoseconds: 1_000_000) { false }?.request.compared == true)
        #expect(second.done.wait(timeout: .now()) == .timedOut)
        gate.tookOver("took over")
        #expect(second.received() == .acknowledged(ControlAcknowledgement(action: .takeOver, what: "took over")))
    }

    @Test("told without a go FIFO: refused at once as not told (ask as usual), and a go line asks nothing")
    func notTold() {
        guard case .refused(let refusal) = Self.collect("t", from: gate) else {
            Issue.record("take-over told was not refused")
            return
        }
        #expect(refusal.reason == .notTold)
        gate.go("t")
        #expect(gate.waitForRequest(pollNanoseconds: 1_000) { true } == nil)
        #expect(status()?.state == .waiting)
    }

    @Test(
        "go lines told no more (the CPUs run, or it stops): a take-over waiting for a go not read is refused as not told"
    )
    func stoppedTelling() {
        let gate = Self.toldGate()
        let waiting = Self.collectOnAnotherThread(gate, token: "never-written")
        #expect(Self.eventually { gate.goWaits.collectors == 1 })
        gate.stopTelling()
        guard case .refused(let refusal)? = waiting.received() else {
            Issue.record("the waiting take-over was not refused")
            return
        }
        #expect(refusal.reason == .notTold)
        #expect(refusal.error.contains("no go never-written was read"))
    }

    @Test("a go asked, then the process stops: the go's outcome is the stop's refusal")
    func toldThenClosed() throws {
        let gate = try Self.askedByGo("b2")
        gate.close()
        #expect(
            Self.collect("b2", from: gate)
                == .refused(ControlRefusal(error: "mirrord is stopping: nothing was taken over")))
    }

    @Test("a refused go's outcome: the process waits for its client to collect it, and no longer than that")
    func awaitCollection() throws {
        let gate = Self.toldGate()
        // No go answered: nothing to wait for.
        gate.awaitCollection(seconds: 60)
        gate.go("c3")
        _ = try #require(gate.waitForRequest(pollNanoseconds: 1_000_000) { false })
        gate.refused("takeover refused: a damaged journal")
        let collected = PendingReply()
        Thread.detachNewThread {
            gate.awaitCollection(seconds: 60)
            collected.done.signal()
        }
        #expect(Self.eventually { gate.goWaits.awaitingCollection == 1 })
        #expect(collected.done.wait(timeout: .now()) == .timedOut)
        #expect(
            Self.collect("c3", from: gate)
                == .refused(ControlRefusal(error: "takeover refused: a damaged journal")))
        // Returns once collected (its 60 s would be a hang: this wait detects one).
        #expect(collected.done.wait(timeout: .now() + .seconds(30)) == .success)
    }

    @Test("a go line read while another's takeover is under way: refused at once, the first's outcome kept for it")
    func secondGo() throws {
        let gate = try Self.askedByGo("first")
        let first = Self.collectOnAnotherThread(gate, token: "first")
        #expect(Self.eventually { gate.goWaits.collectors == 1 })
        gate.go("second")
        gate.go("first")  // the same promote's line again: nothing changes
        #expect(
            Self.collect("second", from: gate)
                == .refused(ControlRefusal(error: "a takeover was asked for already: it is under way or over")))
        #expect(first.done.wait(timeout: .now()) == .timedOut)
        gate.tookOver("took over")
        #expect(first.received() == .acknowledged(ControlAcknowledgement(action: .takeOver, what: "took over")))
    }

    @Test("a go line never read: take-over told is refused as not told once the read's bound passes, nothing asked")
    func neverRead() {
        let gate = Self.toldGate(goReadSeconds: 1)
        guard case .refused(let refusal) = Self.collect("lost", from: gate) else {
            Issue.record("take-over told was not refused")
            return
        }
        #expect(refusal == ControlRefusal(error: "no go lost was read within 1 s: nothing was told", reason: .notTold))
        #expect(gate.waitForRequest(pollNanoseconds: 1_000) { true } == nil)
    }

    @Test("a stop while it waits: the wait gives up, asked by no one")
    func stopped() {
        let looks = Atomic<Int>(0)
        let at = gate.waitForRequest(pollNanoseconds: 1_000) { looks.add(1, ordering: .relaxed).newValue >= 3 }
        #expect(at == nil)
        #expect(looks.load(ordering: .relaxed) == 3)
    }
}
