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
        let pending = PendingReply()
        let gate = self.gate
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

    @Test("a stop while it waits: the wait gives up, asked by no one")
    func stopped() {
        let looks = Atomic<Int>(0)
        let at = gate.waitForRequest(pollNanoseconds: 1_000) { looks.add(1, ordering: .relaxed).newValue >= 3 }
        #expect(at == nil)
        #expect(looks.load(ordering: .relaxed) == 3)
    }
}
