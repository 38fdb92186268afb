/// What a module fault calls for, given where the pair stands: the rules of fault tolerance in
/// service, kept apart from the service that carries them out so that they can be read (and
/// tested) as a table.
public enum FaultResponse: Sendable, Hashable {
    /// Switch the CPUs and DMA to the spare (in lockstep, so nothing is lost) and go simplex.
    case failOver
    /// Drop lockstep and remove the spare; go simplex and wait for a replacement.
    case removeSpare
    /// The spare failed during a duplex: the duplex ends (the fault's doorbell has already
    /// stopped it; it never reports duplexed) and the spare is removed.
    case abortDuplex
    /// Fail over as soon as the running duplex has made the spare equal.
    case failOverWhenDuplexed
    /// Nothing is left to run on: the memory (or the frame) is lost; `what` says what.
    case fatal(what: String)
    /// Logged and counted; nothing to do.
    case noted

    /// The response to `fault` in `state`. `failing` is true when the fault is fatal to its
    /// module or the module's correctable errors passed their limit (a predicted failure);
    /// `hasSpare` whether a spare is installed.
    public static func decide(_ fault: ModuleFault, failing: Bool, state: LifecycleState, hasSpare: Bool)
        -> FaultResponse
    {
        guard failing else { return .noted }
        switch (state, fault.module) {
        case (.failed, _):
            return .noted
        case (.duplexed, .active):
            return .failOver
        case (.duplexed, .spare), (.simplex, .spare):
            return hasSpare ? .removeSpare : .noted
        case (.duplexing, .spare):
            return .abortDuplex
        case (.duplexing, .active):
            // A predicted failure can wait for the duplex; a lost module or frame cannot.
            guard fault.kind == .correctable else {
                return .fatal(
                    what: "the active module failed before the spare was duplexed (\(fault.what)): "
                        + (fault.kind == .lost
                            ? "the machine's memory is lost" : "the data of frame \(fault.frame ?? 0) is lost"))
            }
            return .failOverWhenDuplexed
        case (.simplex, .active):
            guard fault.kind == .correctable else {
                return .fatal(
                    what:
                        "a second failure while simplex: active module \(fault.what), with no duplexed spare to fail over to: "
                        + (fault.kind == .lost
                            ? "the machine's memory is lost" : "the data of frame \(fault.frame ?? 0) is lost"))
            }
            return .noted
        }
    }
}
