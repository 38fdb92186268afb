import Dispatch
import MirrorCore
import MirrordControl
import Synchronization

/// A takeover that waits to be asked (`mirrord takeover --on-request`): the process is started
/// ahead, on the host that would take over, and the control socket's `take-over` request lets it
/// go on. What a takeover spends before it reads the export (the process's start, the
/// configuration, a unit's start under systemd) is then spent before it is needed: a planned
/// switch-over's promote costs one round trip on the socket instead.
///
/// Shared by the control server's thread, which answers requests, and the runner, which waits for
/// the request and then takes over: the `take-over` reply waits (on the server's thread) for the
/// runner's ``answer(_:)``: the CPUs running, or why the takeover was refused. Every other request
/// is answered at once: `status` (and `watch`) with the state `waiting` (`starting` once asked),
/// an action refused.
///
/// A takeover with a go FIFO (``TakeoverGoFIFO``) is also told to go without a request: a line
/// `go TOKEN` there (``go(_:)``) asks it what `goRequest` says, with no client process started on
/// the way (a promote's path, the agent's shell writing one line). The caller collects the outcome
/// with a `take-over` that names the token (``TakeoverRequest/told``): answered at once if the
/// outcome is there, else when it comes.
package final class TakeoverOnRequest: Sendable {
    /// How long a `take-over` reply waits for the outcome before it says so (a hang detector: a
    /// takeover replays at most one journal half and maps the image); less than a client waits.
    static let answerTimeoutSeconds = TakeoverRequest.replySeconds - 5

    /// Where the wait stands.
    private enum Phase {
        /// No request yet.
        case waiting
        /// Asked, at this monotonic time (nanoseconds), with what the request says, by a request
        /// whose reply waits or (`byGo`) a go line: the runner takes over.
        case asked(UInt64, TakeoverRequest, byGo: Bool)
        /// The outcome the reply carries.
        case answered
        /// Stopping while it waited: every request is refused at once.
        case closed
    }

    private let phase = Mutex(Phase.waiting)
    /// The outcome the waiting reply carries (kept apart from the phase: a refusal that keeps the
    /// takeover waiting puts the phase back).
    private let outcome = Mutex<ControlReply?>(nil)
    /// The last go line read and, once answered, its outcome; with the `take-over` replies that
    /// wait for it.
    private let told = Mutex(Told())
    /// Signalled when a request or a go line asks (again, after a refusal that keeps it waiting).
    private let asked = DispatchSemaphore(value: 0)
    /// Signalled when the runner answers a request (a go line's outcome goes to ``told``).
    private let answered = DispatchSemaphore(value: 0)
    /// The export it would take over from, as the status names it.
    private let source: String
    /// A few keys in force, as `status` reports them.
    private let configuration: [String: String]
    /// What a go line asks (its start record), or nil: no go FIFO is read.
    private let goRequest: TakeoverRequest?

    /// The go lines' side of the wait.
    private struct Told {
        /// The token of the last go line read.
        var token: String?
        /// That go line's outcome, once there.
        var outcome: ControlReply?
        /// The runner answers that go (it took the request in).
        var pending = false
        /// Whether go lines still count (not once the wait is over for good).
        var closed = false
        /// The `take-over` replies waiting for an outcome, each woken once one comes.
        var waiters: [DispatchSemaphore] = []
        /// A `take-over` naming the token was answered with its outcome.
        var collected = false
    }

    /// Signalled when a go line's outcome is first collected.
    private let collected = DispatchSemaphore(value: 0)

    /// A takeover of `source` waiting to be asked; `configuration` is what `status` shows of the
    /// configuration in force. With `goRequest`, a go line asks what it says (``go(_:)``).
    package init(source: String, configuration: [String: String], goRequest: TakeoverRequest? = nil) {
        self.source = source
        self.configuration = configuration
        self.goRequest = goRequest
    }

    /// The status line while it waits (also systemd's `STATUS=`).
    package var statusLine: String {
        "waiting to take over from \(source) (mirrorctl take-over)"
    }

    /// The reply to `request` (on the control server's thread). A `take-over` blocks until the
    /// runner answers.
    package func reply(to request: ControlRequest) -> ControlReply {
        switch request {
        case .status, .watch:
            return .status(status)
        case .takeOver(let request):
            if let token = request.told { return outcome(told: token) }
            // Why it is refused, or nil: taken in, the runner goes on.
            let refusal = phase.withLock { phase -> String? in
                switch phase {
                case .waiting:
                    phase = .asked(MonotonicClock.nanoseconds(), request, byGo: false)
                    return nil
                case .closed: return "mirrord is stopping: nothing was taken over"
                case .asked, .answered: return "a takeover was asked for already: it is under way or over"
                }
            }
            if let refusal { return .refused(ControlRefusal(error: refusal)) }
            asked.signal()
            let deadline = DispatchTime.now() + .seconds(Self.answerTimeoutSeconds)
            guard answered.wait(timeout: deadline) == .success else {
                return .refused(
                    ControlRefusal(
                        error:
                            "the takeover did not finish within \(Self.answerTimeoutSeconds) s: see the daemon's journal"
                    ))
            }
            return outcome.withLock { $0 }
                ?? .refused(ControlRefusal(error: "the takeover ended without an outcome"))
        case .injectFault, .replaceSpare, .reduplex, .scrub:
            return .refused(
                ControlRefusal(error: "no machine runs here yet: this daemon waits to take over (mirrorctl take-over)"))
        }
    }

    /// Waits until `take-over` arrives, or `stopping` says to give up (looked at every
    /// `pollNanoseconds`: a signal arrived). Returns when it was asked (monotonic nanoseconds) and
    /// what the request says, or nil when it gave up.
    package func waitForRequest(pollNanoseconds: UInt64 = 100_000_000, stopping: () -> Bool) -> (
        at: UInt64, request: TakeoverRequest
    )? {
        while true {
            if asked.wait(timeout: .now() + .nanoseconds(Int(pollNanoseconds))) == .success {
                return phase.withLock { phase in
                    if case .asked(let at, let request, _) = phase { return (at, request) }
                    return nil
                }
            }
            if stopping() { return nil }
        }
    }

    /// The outcome, for the `take-over` reply waiting on it: an acknowledgement once the CPUs
    /// run, or a refusal. Only the first answer counts; one before any request is kept for none.
    package func answer(_ reply: ControlReply) {
        answer(reply, then: .answered)
    }

    /// Answers the request with a refusal the client acts on, `why`, and waits again: this
    /// host's export is not known to be the newest (``ControlRefusal/Reason/notKnownNewest``), so
    /// the client compares the exports, then asks again.
    package func notKnownNewest(_ why: String) {
        answer(.refused(ControlRefusal(error: why, reason: .notKnownNewest)), then: .waiting)
    }

    /// `reply` for the request waiting on it (or the go line that asked), the phase then `next`;
    /// nothing without a request.
    private func answer(_ reply: ControlReply, then next: Phase) {
        // Who asked: a request (true) or a go line (false); nil when nothing was asked.
        let byRequest = phase.withLock { phase -> Bool? in
            guard case .asked(_, _, let byGo) = phase else { return nil }
            if !byGo { outcome.withLock { $0 = reply } }
            phase = next
            return !byGo
        }
        switch byRequest {
        case true?: answered.signal()
        case false?: settleGo(with: reply)
        case nil: break
        }
    }

    /// The line `go token` on the go FIFO: asks what the go FIFO's start said, as a `take-over`
    /// would, without waiting for the outcome (a `take-over` naming `token` collects it). Read
    /// while a takeover is under way or over, or with no go FIFO, it asks nothing; its outcome
    /// says why.
    package func go(_ token: String) {
        guard let goRequest else { return }
        let refusal = phase.withLock { phase -> String? in
            switch phase {
            case .waiting:
                phase = .asked(MonotonicClock.nanoseconds(), goRequest, byGo: true)
                told.withLock {
                    $0.token = token
                    $0.outcome = nil
                    $0.pending = true
                    $0.collected = false
                }
                return nil
            case .closed: return "mirrord is stopping: nothing was taken over"
            case .asked, .answered: return "a takeover was asked for already: it is under way or over"
            }
        }
        if let refusal {
            told.withLock {
                $0.token = token
                $0.outcome = .refused(ControlRefusal(error: refusal))
                $0.pending = false
                $0.collected = false
            }
            wakeWaiters()
        } else {
            asked.signal()
        }
    }

    /// The outcome of the takeover told by the go line `token`, once there: at once when it is,
    /// else when it comes (a hang detector bounds the wait). A daemon that reads no go FIFO, or
    /// waits no more, refuses it (``ControlRefusal/Reason/notTold``): nothing was asked.
    private func outcome(told token: String) -> ControlReply {
        guard goRequest != nil else {
            return .refused(
                ControlRefusal(
                    error:
                        "this takeover reads no go FIFO (mirrord takeover --go-fifo): nothing was told; ask with take-over",
                    reason: .notTold))
        }
        let deadline = DispatchTime.now() + .seconds(Self.answerTimeoutSeconds)
        while true {
            let wake = DispatchSemaphore(value: 0)
            let ready = told.withLock { told -> ControlReply? in
                if told.token == token, let outcome = told.outcome {
                    if !told.collected {
                        told.collected = true
                        collected.signal()
                    }
                    return outcome
                }
                if told.closed {
                    return .refused(
                        ControlRefusal(
                            error: "no go \(token) was read before this takeover stopped waiting: nothing was told",
                            reason: .notTold))
                }
                told.waiters.append(wake)
                return nil
            }
            if let ready { return ready }
            guard wake.wait(timeout: deadline) == .success else {
                told.withLock { $0.waiters.removeAll { $0 === wake } }
                return .refused(
                    ControlRefusal(
                        error:
                            "no outcome of go \(token) within \(Self.answerTimeoutSeconds) s: see the daemon's journal"
                    ))
            }
        }
    }

    /// The go line that asked, answered with `reply`; its waiters woken.
    private func settleGo(with reply: ControlReply) {
        let settled = told.withLock { told -> Bool in
            guard told.pending else { return false }
            told.outcome = reply
            told.pending = false
            return true
        }
        if settled { wakeWaiters() }
    }

    /// Wakes every `take-over` waiting for a go's outcome (each looks again).
    private func wakeWaiters() {
        let waiters = told.withLock { told -> [DispatchSemaphore] in
            defer { told.waiters = [] }
            return told.waiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Waits up to `seconds` for the outcome of the last go line to be collected by a `take-over`
    /// naming it (its client, started ahead, may come a little after the outcome); returns at once
    /// when no go line was answered or its outcome was collected. For a refused takeover's process
    /// before it stops its socket: a client that came later would find none waiting.
    package func awaitCollection(seconds: Int) {
        let deadline = DispatchTime.now() + .seconds(seconds)
        while told.withLock({ $0.outcome != nil && !$0.collected }) {
            guard collected.wait(timeout: deadline) == .success else { return }
        }
    }

    /// Go lines count no more (the takeover runs the machine, or was refused for good): a reply
    /// waiting for a go not read yet is refused (``ControlRefusal/Reason/notTold``).
    package func stopTelling() {
        told.withLock { $0.closed = true }
        wakeWaiters()
    }

    /// Stops waiting for good (the process stops): a request still waiting on the runner is
    /// refused, and any later one at once, so that the server's thread is free to be stopped.
    package func close() {
        let refusal = ControlReply.refused(ControlRefusal(error: "mirrord is stopping: nothing was taken over"))
        answer(refusal, then: .closed)
        phase.withLock { $0 = .closed }
        stopTelling()
    }

    /// The takeover took over: `line` says from which epoch and how fast.
    package func tookOver(_ line: String) {
        answer(.acknowledged(ControlAcknowledgement(action: .takeOver, what: line)))
    }

    /// The takeover was refused or failed: `why`, in one line.
    package func refused(_ why: String) {
        answer(.refused(ControlRefusal(error: why)))
    }

    /// Where a waiting takeover stands: `waiting`, no machine, no duplex; `starting` once asked
    /// (it may run the machine any moment).
    private var status: StatusReply {
        let waiting = phase.withLock { if case .waiting = $0 { true } else { false } }
        return StatusReply(
            state: waiting ? .waiting : .starting,
            status: waiting ? statusLine : "asked to take over from \(source)", spareInstalled: false,
            progress: ProgressReport(engineState: .idle), lifecycle: LifecycleRecord().report,
            configuration: configuration)
    }
}
