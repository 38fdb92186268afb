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
package final class TakeoverOnRequest: Sendable {
    /// How long a `take-over` reply waits for the outcome before it says so (a hang detector: a
    /// takeover replays at most one journal half and maps the image); less than a client waits.
    static let answerTimeoutSeconds = TakeoverRequest.replySeconds - 5

    /// Where the wait stands.
    private enum Phase {
        /// No request yet.
        case waiting
        /// Asked, at this monotonic time (nanoseconds), with what the request says: the runner
        /// takes over.
        case asked(UInt64, TakeoverRequest)
        /// The outcome the reply carries.
        case answered
        /// Stopping while it waited: every request is refused at once.
        case closed
    }

    private let phase = Mutex(Phase.waiting)
    /// The outcome the waiting reply carries (kept apart from the phase: a refusal that keeps the
    /// takeover waiting puts the phase back).
    private let outcome = Mutex<ControlReply?>(nil)
    /// Signalled once, when the request arrives.
    private let asked = DispatchSemaphore(value: 0)
    /// Signalled once, when the runner answers.
    private let answered = DispatchSemaphore(value: 0)
    /// The export it would take over from, as the status names it.
    private let source: String
    /// A few keys in force, as `status` reports them.
    private let configuration: [String: String]

    /// A takeover of `source` waiting to be asked; `configuration` is what `status` shows of the
    /// configuration in force.
    package init(source: String, configuration: [String: String]) {
        self.source = source
        self.configuration = configuration
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
            // Why it is refused, or nil: taken in, the runner goes on.
            let refusal = phase.withLock { phase -> String? in
                switch phase {
                case .waiting:
                    phase = .asked(MonotonicClock.nanoseconds(), request)
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
                    if case .asked(let at, let request) = phase { return (at, request) }
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

    /// `reply` for the request waiting on it, the phase then `next`; nothing without a request.
    private func answer(_ reply: ControlReply, then next: Phase) {
        let waiting = phase.withLock { phase -> Bool in
            guard case .asked = phase else { return false }
            outcome.withLock { $0 = reply }
            phase = next
            return true
        }
        if waiting { answered.signal() }
    }

    /// Stops waiting for good (the process stops): a request still waiting on the runner is
    /// refused, and any later one at once, so that the server's thread is free to be stopped.
    package func close() {
        let pending = phase.withLock { phase -> Bool in
            defer { phase = .closed }
            if case .asked = phase { return true }
            return false
        }
        if pending {
            outcome.withLock { $0 = .refused(ControlRefusal(error: "mirrord is stopping: nothing was taken over")) }
            answered.signal()
        }
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
