/// What a request of the control protocol asks, as its `verb` field names it on the wire.
///
/// The raw values are the protocol's words (docs/control.md); an acknowledgement names the action
/// it took in by the same word.
package enum ControlVerb: String, Sendable, Hashable, CaseIterable, Codable {
    /// Where the pair stands: a ``StatusReply``.
    case status
    /// Raise a module fault, as the hardware would (a drill): a ``FaultInjection``.
    case injectFault = "inject-fault"
    /// Install a replacement spare after a module was removed.
    case replaceSpare = "replace-spare"
    /// Duplex the installed spare while simplex.
    case reduplex
    /// Compare the next scrub slice now, while duplexed.
    case scrub
    /// Where the pair stands, as ``status``, from a client that follows it: when the daemon
    /// stops, the connection gets one last ``StatusReply`` unasked (the final state and why).
    case watch
    /// Take over now, when the daemon is a takeover waiting to be asked (`mirrord takeover
    /// --on-request`): a ``TakeoverRequest``. The reply comes once the machine's CPUs run, or says
    /// why it was refused.
    case takeOver = "take-over"

    /// The known verbs as an error message lists them: `status, inject-fault, …`.
    package static var known: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
