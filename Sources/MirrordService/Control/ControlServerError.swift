/// Why the control socket could not be opened: the step that failed and the system's reason.
package struct ControlServerError: Error, CustomStringConvertible, Sendable {
    /// What was being done, for example `"bind /run/mirrord/control.sock"`.
    package var operation: String
    /// The system's words for what went wrong.
    package var reason: String

    /// `"bind /run/mirrord/control.sock: Permission denied"`.
    package var description: String { "\(operation): \(reason)" }
}
