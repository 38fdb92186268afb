/// The reply to a request that was not carried out: a line that is not a request, an action the
/// pair's state does not allow, a client not let in. On the wire inside ``ControlReply``, which
/// adds `"ok": false`.
package struct ControlRefusal: Sendable, Hashable, Codable {
    /// Why, in one line for the operator.
    package var error: String
    /// What a client acts on, when the refusal is one it can act on; absent from the wire otherwise.
    package var reason: Reason?

    /// A refusal a client can act on, as the wire's `reason` names it.
    package enum Reason: String, Sendable, Hashable, CaseIterable, Codable {
        /// `take-over` with a start record: this host's export is not known to be the newest (no
        /// record, or no generation past it); the takeover keeps waiting. Compare the exports, then
        /// ask again with `compared`.
        case notKnownNewest = "not-known-newest"
        /// `take-over` with `told`: no go line with that token asked this daemon (it reads no go
        /// FIFO, read no such line within a few seconds, or waits to take over no more); ask with
        /// `take-over` itself.
        case notTold = "not-told"
    }

    /// A refusal saying `error`, with `reason` when a client can act on it.
    package init(error: String, reason: Reason? = nil) {
        self.error = error
        self.reason = reason
    }
}
