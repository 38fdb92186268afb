import Synchronization

/// A request, from another thread, that a running duplex stop at its next safe point.
///
/// The engine checks it between chunks of the full copy, between passes and between chunks of the
/// verify; a blackout already entered is completed (it lasts about a millisecond), so the CPUs are
/// never left stopped.
public final class DuplexStopToken: Sendable {
    private let requested = Atomic<Bool>(false)
    private let fault = Mutex<ModuleFault?>(nil)

    /// Creates a token that has not been triggered.
    public init() {}

    /// Asks the duplex to stop.
    public func requestStop() { requested.store(true, ordering: .releasing) }

    /// Asks the duplex to end as failed because a module failed (`fault`): it stops at its next
    /// safe point and never reports duplexed.
    public func abort(because fault: ModuleFault) {
        self.fault.withLock { $0 = $0 ?? fault }
        requested.store(true, ordering: .releasing)
    }

    /// Whether a stop has been asked for.
    public var isStopRequested: Bool { requested.load(ordering: .acquiring) }

    /// The module fault that aborted the duplex, if one did.
    public var moduleFault: ModuleFault? { fault.withLock { $0 } }

    /// Clears the token for the next duplex.
    public func reset() {
        fault.withLock { $0 = nil }
        requested.store(false, ordering: .releasing)
    }
}
