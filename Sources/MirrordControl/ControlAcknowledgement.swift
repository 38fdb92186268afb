/// The reply to an action the daemon took in (`inject-fault`, `replace-spare`, `reduplex`,
/// `scrub`): which action, and what it set going. On the wire inside ``ControlReply``, which adds
/// `"ok": true`.
package struct ControlAcknowledgement: Sendable, Hashable, Codable {
    /// The action taken in, by the verb that asked for it.
    package var action: ControlVerb
    /// What it set going, for example `"active module: module lost"`.
    package var what: String

    /// `action` taken in, having set `what` going.
    package init(action: ControlVerb, what: String) {
        self.action = action
        self.what = what
    }
}
