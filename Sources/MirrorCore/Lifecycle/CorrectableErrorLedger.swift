/// Counts each module's correctable errors over a sliding window; past `limit` in the window the
/// module is predicted to fail, as servers retire a DIMM whose corrected-error rate climbs.
public struct CorrectableErrorLedger: Sendable {
    /// Errors within the window that predict a failure (0: never).
    public private(set) var limit: Int
    /// The window, nanoseconds.
    public private(set) var window: UInt64
    private var times: [ModuleRole: [UInt64]] = [:]

    /// A ledger predicting a failure at `limit` errors within `window` nanoseconds.
    public init(limit: Int, window: UInt64) {
        self.limit = limit
        self.window = window
    }

    /// Takes the limit and window of `policy` (a reload), keeping the errors recorded.
    public mutating func apply(_ policy: FaultTolerancePolicy) {
        limit = policy.correctableLimit
        window = policy.correctableWindowNanoseconds
    }

    /// Records a correctable error on `module` at `now`; returns whether the module now counts as
    /// failing.
    public mutating func record(_ module: ModuleRole, now: UInt64) -> Bool {
        var recent = (times[module] ?? []).filter { now &- $0 < window }
        recent.append(now)
        times[module] = recent
        return limit > 0 && recent.count >= limit
    }

    /// The errors of `module` within the window before `now`.
    public func count(_ module: ModuleRole, now: UInt64) -> Int {
        (times[module] ?? []).filter { now &- $0 < window }.count
    }

    /// After a failover the former spare is the active module: its record goes with it, and the
    /// removed module's is dropped.
    public mutating func failedOver() {
        times[.active] = times[.spare]
        times[.spare] = nil
    }

    /// A new spare starts with a clean record.
    public mutating func spareReplaced() { times[.spare] = nil }
}
