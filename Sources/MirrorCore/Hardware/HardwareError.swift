/// A failure of the machine behind ``DuplexHardware``: what kind of failure (a ``Code`` callers
/// can act on), the operation that failed, a message an operator can act on, and the system
/// error number when a system call failed.
public struct HardwareError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The kinds of hardware failure, so that callers decide on types, not on message text.
    public enum Code: String, Sendable, Hashable {
        /// The machine cannot be built with the options given (geometry, writers, sizes).
        case invalidMachine = "invalid_machine"
        /// Memory for a module could not be mapped.
        case memory
        /// A module's image file or its directory could not be created, opened or sized.
        case imageFile = "image_file"
        /// The workload's trace could not be read.
        case trace
        /// This kernel or process cannot track writes this way (missing feature, not allowed).
        case trackingUnavailable = "tracking_unavailable"
        /// Dirty tracking failed while running; its state can no longer be trusted.
        case trackingFailed = "tracking_failed"
        /// A blackout could not be entered.
        case blackout
        /// The process could not get a resource it needs to run the machine (a thread).
        case resources
        /// This machine cannot do what was asked of its modules (a failover without a spare, or
        /// with a backend that cannot switch modules).
        case moduleUnavailable = "module_unavailable"
        /// A fault asked for names what the machine does not have (a frame beyond its modules).
        case invalidFault = "invalid_fault"
    }

    /// What kind of failure this is.
    public var code: Code
    /// The operation that failed, for example `"enter blackout"`.
    public var operation: String
    /// What went wrong, in words an operator can act on.
    public var message: String
    /// The `errno` of the system call that failed, when one did.
    public var errno: Int32?

    /// Creates an error.
    public init(_ code: Code, operation: String, message: String, errno: Int32? = nil) {
        self.code = code
        self.operation = operation
        self.message = message
        self.errno = errno
    }

    /// The value or error as one line of text.
    public var description: String { "\(operation): \(message)" }
}
