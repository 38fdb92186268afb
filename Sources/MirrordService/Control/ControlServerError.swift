/// Why the control socket could not be opened: the step that failed and the system's reason.
public struct ControlServerError: Error, CustomStringConvertible, Sendable {
    /// What was being done, for example `"bind /run/mirrord/control.sock"`.
    public var operation: String
    /// The system's words for what went wrong.
    public var reason: String

    /// `"bind /run/mirrord/control.sock: Permission denied"`.
    public var description: String { "\(operation): \(reason)" }
}
