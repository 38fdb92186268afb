/// Why the export could not be read, written or trusted, in words that name what was wrong and
/// where: the operation, the export, and the reason.
package struct ExportError: Error, CustomStringConvertible, Sendable, Hashable {
    /// What went wrong, for callers that act on it.
    package enum Kind: Sendable, Hashable {
        /// A read, write or flush failed (the link, the server, the file).
        case io
        /// The export is too small for the memory and its journal.
        case tooSmall
        /// The export holds something that is not mirrord's, or another layout.
        case notMirrord
        /// Another primary owns the export.
        case owned
        /// The export holds no committed epoch to take over from.
        case noCommittedEpoch
        /// A committed epoch's frame does not match its checksum.
        case corrupt
        /// The standby on the spare host has not put an epoch in place in time.
        case standbyBehind
        /// Another mirrord process on this host has the export's file (a standby, a takeover).
        case inUse
        /// The export is the one this host took over and runs from: never its own spare.
        case ownImage
        /// The export holds a committed epoch that a machine started anew, not compared with it,
        /// would overwrite with its first sync.
        case holdsEpoch
        /// An epoch's journal half still holds an earlier epoch that a clean stop left there, not
        /// in place: only the stop's last epoch may follow such a one.
        case leftInJournal
    }

    /// What went wrong.
    package var kind: Kind
    /// The operation and the export, e.g. `"write nbd://10.0.0.2/spare"`.
    package var operation: String
    /// The reason.
    package var reason: String

    /// An error of `kind` in `operation`, for `reason`.
    package init(_ kind: Kind, _ operation: String, _ reason: String) {
        self.kind = kind
        self.operation = operation
        self.reason = reason
    }

    /// `"write nbd://10.0.0.2/spare: Connection reset by peer"`.
    package var description: String { "\(operation): \(reason)" }
}
