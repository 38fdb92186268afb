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
/// but a `take-over` naming a go line (below) is answered at once: `status` (and `watch`) with the state `waiting` (`starting` once asked),
/// an action refused.
///
/// A takeover with a go FIFO (``TakeoverGoFIFO``) is also told to go without a request: a line
/// `go TOKEN` there (``go(_:)``) asks it what `goRequest` says, with no client process started on
/// the way (a promote's path, the agent's shell writing one line). The caller collects the outcome
/// with a `take-over` that names the token (``TakeoverRequest/told``): answered at once if the
/// outcome is there, else when it comes (and not told, at once, when the line was not read within
/// ``goReadSeconds``: the daemon did not read it, and no takeover started from it).
package final class TakeoverOnRequest: Sendable {
    /// How long a `take-over` reply waits for the outcome before it says so (a hang detector: a
    /// takeover replays at most one journal half and maps the image); less than a client waits.
    static let answerTimeoutSeconds = TakeoverRequest.replySeconds - 5
    /// How long a `take-over` naming a go line waits for the line to be read: its client sends it
    /// once the line was written, so a line not read by then was not read at all (no reader),
    /// and the control server's one thread is not held for long.
    static let goReadSeconds = 5
    /// Go lines whose outcome is kept for a `take-over` naming them: the newest (one a promote).
    static let keptLines = 8

    /// Where the wait stands.
    private enum Phase {
        /// No request yet.
        case waiting
        /// Asked, at this monotonic time (nanoseconds), with what the request says, by a request
        /// whose reply waits or (`byGo`) the go line with that token: the runner takes over.
        case asked(UInt64, TakeoverRequest, byGo: String?)
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
    /// How long a `take-over` naming a go line waits for the line to be read.
    private let goReadSeconds: Int

    /// The go lines' side of the wait.
    private struct Told {
        /// One go line read: its token, its outcome once there, and whether a `take-over` naming
        /// it got that outcome.
        struct Line {
            var token: String
            var outcome: ControlReply?
            var collected = false
        }

        /// The go lines read, the newest last (the last ``keptLines``).
        var lines: [Line] = []
        /// The token of the last line that asked (the runner answers it).
        var lastAsked: String?
        /// Whether go lines still count (not once the wait is over for good).
        var closed = false
        /// The `take-over` replies waiting for a line or its outcome, each woken once one comes.
        var waiters: [DispatchSemaphore] = []
        /// Calls of ``awaitCollection(seconds:)`` waiting now.
        var awaitingCollection = 0

        /// The line with `token`, if it was read.
        func line(_ token: String) -> Line? { lines.last { $0.token == token } }

        /// Keeps a line read with `token` and, when already known, its `outcome`; a token read
        /// before is the same promote's line again, and changes nothing.
        mutating func read(_ token: String, outcome: ControlReply?) {
            guard line(token) == nil else { return }
            lines.append(Line(token: token, outcome: outcome))
            let kept = TakeoverOnRequest.keptLines
            if lines.count > kept { lines.removeFirst(lines.count - kept) }
        }

        /// The outcome of the line `token` that asked.
        mutating func settle(_ token: String, with outcome: ControlReply) {
            guard let index = lines.lastIndex(where: { $0.token == token }) else { return }
            lines[index].outcome = outcome
        }
    }

    /// Signalled when a go line's outcome is first collected.
    private let collected = DispatchSemaphore(value: 0)

    /// A takeover of `source` waiting to be asked; `configuration` is what `status` shows of the
    /// configuration in force. With `goRequest`, a go line asks what it says (``go(_:)``); a
    /// `take-over` naming a line waits `goReadSeconds` for it to be read.
    package init(
        source: String, configuration: [String: String], goRequest: TakeoverRequest? = nil,
        goReadSeconds: Int = TakeoverOnRequest.goReadSeconds
    ) {
        self.source = source
        self.configuration = configuration
        self.goRequest = goRequest
        self.goReadSeconds = goReadSeconds
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
                    phase = .asked(MonotonicClock.nanoseconds(), request, byGo: nil)
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
        // Whether a request's reply waits for it (else a go line asked, or nothing did).
        let byRequest = phase.withLock { phase -> Bool in
            guard case .asked(_, _, let byGo) = phase else { return false }
            phase = next
            if let token = byGo {
                told.withLock { $0.settle(token, with: reply) }
                return false
            }
            outcome.withLock { $0 = reply }
            return true
        }
        if byRequest { answered.signal() } else { wakeWaiters() }
    }

    /// The line `go token` on the go FIFO: asks what the go FIFO's start said, as a `take-over`
    /// would, without waiting for the outcome (a `take-over` naming `token` collects it). Read
    /// while a takeover is under way or over, or with no go FIFO, it asks nothing; its outcome
    /// says why.
    package func go(_ token: String) {
        guard let goRequest else { return }
        let took = phase.withLock { phase -> Bool in
            let refusal: String
            switch phase {
            case .waiting:
                phase = .asked(MonotonicClock.nanoseconds(), goRequest, byGo: token)
                told.withLock {
                    $0.read(token, outcome: nil)
                    $0.lastAsked = token
                }
                return true
            case .closed: refusal = "mirrord is stopping: nothing was taken over"
            case .asked, .answered: refusal = "a takeover was asked for already: it is under way or over"
            }
            told.withLock { $0.read(token, outcome: .refused(ControlRefusal(error: refusal))) }
            return false
        }
        if took { asked.signal() }
        wakeWaiters()
    }

    /// The outcome of the takeover told by the go line `token`: at once when it is there, else
    /// when it comes (a hang detector bounds the wait). Refused as not told
    /// (``ControlRefusal/Reason/notTold``: nothing was asked) by a daemon that reads no go FIFO,
    /// and when the line was not read within ``goReadSeconds`` or before go lines stopped
    /// counting.
    private func outcome(told token: String) -> ControlReply {
        guard goRequest != nil else {
            return .refused(
                ControlRefusal(
                    error:
                        "this takeover reads no go FIFO (mirrord takeover --go-fifo): nothing was told; ask with take-over",
                    reason: .notTold))
        }
        let now = DispatchTime.now()
        let readBy = now + .seconds(goReadSeconds)
        let answeredBy = now + .seconds(Self.answerTimeoutSeconds)
        while true {
            let wake = DispatchSemaphore(value: 0)
            // The outcome, or nil and whether the line was read.
            let (ready, read) = told.withLock { told -> (ControlReply?, Bool) in
                if let index = told.lines.lastIndex(where: { $0.token == token }) {
                    if let outcome = told.lines[index].outcome {
                        if !told.lines[index].collected {
                            told.lines[index].collected = true
                            collected.signal()
                        }
                        return (outcome, true)
                    }
                    told.waiters.append(wake)
                    return (nil, true)
                }
                if told.closed {
                    return (
                        .refused(
                            ControlRefusal(
                                error: "no go \(token) was read before this takeover stopped waiting: nothing was told",
                                reason: .notTold)), false
                    )
                }
                told.waiters.append(wake)
                return (nil, false)
            }
            if let ready { return ready }
            if wake.wait(timeout: read ? answeredBy : readBy) == .success { continue }
            // Looked at once more: the line or its outcome may have come with the deadline.
            let late = told.withLock { told -> Bool in
                told.waiters.removeAll { $0 === wake }
                return read ? told.line(token)?.outcome != nil : told.line(token) != nil
            }
            if late { continue }
            return .refused(
                read
                    ? ControlRefusal(
                        error:
                            "no outcome of go \(token) within \(Self.answerTimeoutSeconds) s: see the daemon's journal")
                    : ControlRefusal(
                        error: "no go \(token) was read within \(goReadSeconds) s: nothing was told",
                        reason: .notTold))
        }
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
        // Whether the line that asked has an outcome no `take-over` collected (counted waiting).
        func uncollected() -> Bool {
            told.withLock { told in
                guard let token = told.lastAsked, let line = told.line(token) else { return false }
                let waits = line.outcome != nil && !line.collected
                if waits { told.awaitingCollection += 1 }
                return waits
            }
        }
        while uncollected() {
            let woken = collected.wait(timeout: deadline) == .success
            told.withLock { $0.awaitingCollection -= 1 }
            guard woken else { return }
        }
    }

    /// What waits on a go line now: `take-over` replies waiting for a line or its outcome, and
    /// calls of ``awaitCollection(seconds:)`` (tests look, to act once a wait has begun).
    package var goWaits: (collectors: Int, awaitingCollection: Int) {
        told.withLock { ($0.waiters.count, $0.awaitingCollection) }
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
