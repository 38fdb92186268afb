/// What the control socket allows each client (docs/control.md, "Errors and limits"): the
/// daemon uses the defaults; tests shorten the deadlines so that they never wait seconds.
struct ControlLimits: Sendable {
    /// The longest request line read.
    var maximumLine = 64 << 10
    /// Clients served at once; the last place is kept for root.
    var maximumClients = 32
    /// Replies kept for a client that does not read them; past this its next requests wait
    /// (it is not read from) until it reads.
    var maximumPendingOutput = 1 << 20
    /// A client that sends nothing and reads nothing for this long is dropped.
    var idleNanoseconds: UInt64 = 10_000_000_000
    /// A request line begun must be complete (its newline read) within this long, or the client
    /// is told so and dropped.
    var requestNanoseconds: UInt64 = 5_000_000_000
    /// At most one refusal is journalled per peer uid in this long; the rest are counted, and
    /// their number journalled when it ends.
    var refusalLogIntervalNanoseconds: UInt64 = 60_000_000_000

    /// When the daemon stops, how long the replies owed (and a watching client's last status)
    /// are sent for, to clients that read them, before every connection is closed.
    var farewellNanoseconds: UInt64 = 1_000_000_000

    /// The daemon's limits.
    init() {}

    /// Places a peer other than root may take: all but the one kept for root.
    var clientsBesidesRoot: Int { max(maximumClients - 1, 0) }
}
