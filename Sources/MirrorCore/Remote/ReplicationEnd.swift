/// How epoch replication ended: stopped on request (the last epoch committed with the CPUs
/// stopped, so the spare, brought to that epoch as a takeover brings it, equals the active
/// module), or failed, and why.
public struct ReplicationEnd: Sendable, Hashable {
    /// Why replication ended.
    public enum Reason: String, Sendable, Hashable {
        /// A stop was requested; the final epoch committed with every CPU stopped (the machine
        /// is left stopped, in a blackout, for its shutdown).
        case stopped
        /// The spare did not answer, refused or failed a write: the primary runs on alone.
        case spareFailed = "spare_failed"
        /// A frame read back from the spare differed from memory though nothing had written it
        /// since the epoch that put it there.
        case readBackMismatch = "read_back_mismatch"
        /// More frames were dirty at a pause than the staging area holds (`remote.staging`).
        case stagingOverflow = "staging_overflow"
        /// The machine failed (a blackout, the tracking).
        case hardwareError = "hardware_error"
    }

    /// Why it ended.
    public var reason: Reason
    /// What happened, in words an operator can act on.
    public var message: String
    /// The spare's failure, when it was the spare.
    public var spareError: SpareStoreError?
    /// The newest epoch committed on the spare.
    public var lastCommittedEpoch: UInt64

    /// Creates an end.
    public init(reason: Reason, message: String, spareError: SpareStoreError? = nil, lastCommittedEpoch: UInt64) {
        self.reason = reason
        self.message = message
        self.spareError = spareError
        self.lastCommittedEpoch = lastCommittedEpoch
    }
}
