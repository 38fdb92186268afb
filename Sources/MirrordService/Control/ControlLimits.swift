/// What the control socket allows each client (docs/control.md, "Errors and limits"): the
/// daemon uses the defaults; tests give their own.
struct ControlLimits: Sendable {
    /// The longest request line read.
    var maximumLine = 64 << 10
    /// Clients served at once.
    var maximumClients = 32
    /// Replies kept for a client that does not read them, before it is dropped.
    var maximumPendingOutput = 1 << 20
    /// A client that sends nothing and reads nothing for this long is dropped.
    var idleNanoseconds: UInt64 = 10_000_000_000
    /// At most one refusal is journalled per peer uid in this long; the rest are counted, and
    /// their number journalled when it ends.
    var refusalLogIntervalNanoseconds: UInt64 = 60_000_000_000

    /// The daemon's limits.
    init() {}
}
