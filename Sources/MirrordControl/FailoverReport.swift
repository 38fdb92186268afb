/// A failover as `status` lists it in `lifecycle.failovers`: the fault that caused it and its
/// blackout.
package struct FailoverReport: Sendable, Hashable, Codable {
    /// The fault on the active module, as `"active module: module lost"`.
    package var fault: String
    /// The switch-over's blackout, microseconds.
    package var blackoutMicroseconds: UInt64

    /// A failover caused by `fault`, with its blackout.
    package init(fault: String, blackoutMicroseconds: UInt64) {
        self.fault = fault
        self.blackoutMicroseconds = blackoutMicroseconds
    }

    /// The wire's names (docs/control.md).
    enum CodingKeys: String, CodingKey {
        case fault
        case blackoutMicroseconds = "blackout_us"
    }
}
