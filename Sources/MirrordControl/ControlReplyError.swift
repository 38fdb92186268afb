/// Why a line from the daemon is not a reply `mirrorctl` can read: not JSON, not an object, or a
/// field missing or of the wrong kind (a daemon of another protocol).
package struct ControlReplyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The decoder's account of what did not fit.
    package var reason: String

    /// A reply refused for `reason`.
    package init(reason: String) { self.reason = reason }

    /// `an unreadable reply from the daemon (…)`.
    package var description: String { "an unreadable reply from the daemon (\(reason))" }
}
