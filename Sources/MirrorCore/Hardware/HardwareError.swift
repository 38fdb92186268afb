/// A failure of the machine behind ``DuplexHardware``, with the operation that failed.
public struct HardwareError: Error, CustomStringConvertible, Sendable {
    /// The operation that failed, for example `"enter blackout"`.
    public var operation: String
    /// What went wrong, in words an operator can act on.
    public var message: String

    /// Creates an error.
    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    /// The value or error as one line of text.
    public var description: String { "\(operation): \(message)" }
}
