/// The reply to a request that was not carried out: a line that is not a request, an action the
/// pair's state does not allow, a client not let in. On the wire inside ``ControlReply``, which
/// adds `"ok": false`.
package struct ControlRefusal: Sendable, Hashable, Codable {
    /// Why, in one line for the operator.
    package var error: String

    /// A refusal saying `error`.
    package init(error: String) { self.error = error }
}
