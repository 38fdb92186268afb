import Synchronization

/// A request, from another thread, that a running duplex stop at its next safe point.
///
/// The engine checks it between chunks of the full copy, between passes and between chunks of the
/// verify; a blackout already entered is completed (it lasts about a millisecond), so the CPUs are
/// never left stopped.
public final class DuplexStopToken: Sendable {
    private let requested = Atomic<Bool>(false)
    /// The module fault that aborted the duplex, with the phase the duplex was in when it struck.
    private let fault = Mutex<(fault: ModuleFault, struckIn: DuplexState)?>(nil)
    /// The phase the running duplex is in (a look at the dirty set during the passes counts as
    /// ``DuplexState/blackout``): where a fault reported now struck.
    private let phase = Mutex<DuplexState>(.idle)

    /// Creates a token that has not been triggered.
    public init() {}

    /// Asks the duplex to stop.
    public func requestStop() { requested.store(true, ordering: .releasing) }

    /// Asks the duplex to end as failed because a module failed (`fault`): it stops at its next
    /// safe point and never reports duplexed.
    public func abort(because fault: ModuleFault) {
        let struckIn = phase.withLock { $0 }
        self.fault.withLock { $0 = $0 ?? (fault, struckIn) }
        requested.store(true, ordering: .releasing)
    }

    /// The engine says which phase it is in, so that a fault is reported where it struck (the
    /// engine notices it only at its next safe point, often in a later phase).
    public func enter(_ phase: DuplexState) { self.phase.withLock { $0 = phase } }

    /// Whether a stop has been asked for.
    public var isStopRequested: Bool { requested.load(ordering: .acquiring) }

    /// The module fault that aborted the duplex, if one did.
    public var moduleFault: ModuleFault? { fault.withLock { $0?.fault } }

    /// The phase the duplex was in when the module fault that aborted it struck, if one did.
    public var faultPhase: DuplexState? { fault.withLock { $0?.struckIn } }

    /// Clears the token for the next duplex.
    public func reset() {
        fault.withLock { $0 = nil }
        phase.withLock { $0 = .idle }
        requested.store(false, ordering: .releasing)
    }
}
