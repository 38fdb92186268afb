/// A failure of a ``SpareStore``: what kind (so that callers act on a type, not on text), the
/// operation and the spare it concerned, and the reason.
public struct SpareStoreError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The kinds of failure, by what the caller does about them.
    public enum Kind: String, Sendable, Hashable {
        /// The link or the spare host did not answer in time, or the connection broke: the
        /// primary runs on alone and tries again later.
        case unreachable
        /// The spare refused the request or cannot be used (too small, another primary's, read
        /// only, not mirrord's): trying again changes nothing.
        case refused
        /// A read or write failed on the spare's side (an I/O error of its storage).
        case failed
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The operation and the spare, e.g. `"commit epoch 12 to nbd://10.0.0.2/spare"`.
    public var operation: String
    /// What went wrong.
    public var reason: String

    /// An error of `kind` in `operation`, for `reason`.
    public init(_ kind: Kind, operation: String, reason: String) {
        self.kind = kind
        self.operation = operation
        self.reason = reason
    }

    /// `"commit epoch 12 to nbd://10.0.0.2/spare: timed out after 1 s"`.
    public var description: String { "\(operation): \(reason)" }
}
