import MirrorCore

/// What the service lost when nothing was left to run on: the fault that struck, the pair's
/// state when it did, and whether the whole memory went (a module lost, a failover that failed)
/// or the data of a frame. A later, worse fault (the whole module after a frame) replaces it, so
/// that the final report names the worst loss.
package struct MemoryLoss: Sendable, Hashable {
    /// The fault the loss was reported on.
    package var fault: ModuleFault
    /// The module pair's state when it struck (the state a worse fault is judged in).
    package var state: LifecycleState
    /// Whether the whole memory is lost, rather than the data of one frame.
    package var whole: Bool

    /// A loss of `fault` in `state`; `whole` unless only its frame is lost.
    package init(_ fault: ModuleFault, in state: LifecycleState, whole: Bool? = nil) {
        self.fault = fault
        self.state = state
        self.whole = whole ?? (fault.kind == .lost)
    }

    /// Whether `other` loses more than this: the whole memory after a frame.
    package func isExceeded(by other: MemoryLoss) -> Bool { other.whole && !whole }
}
