import MirrorCore

/// A module fault the service raises on purpose (`[fault]` `module`, `kind`, `frame`, `count`,
/// `during`, `pass`, `after`, `replace_after`): to demonstrate and test failover, simplex and re-duplex.
package struct FaultDrill: Sendable, Hashable {
    /// The module that fails, or none.
    package enum Target: String, Sendable, Hashable, CaseIterable {
        /// No drill.
        case none
        /// The active module.
        case active
        /// The spare module.
        case spare

        /// The module's role, when one is named.
        package var role: ModuleRole? {
            switch self {
            case .none: nil
            case .active: .active
            case .spare: .spare
            }
        }
    }

    /// When the fault is raised: in a phase of the first duplex, or once duplexed.
    package enum Moment: String, Sendable, Hashable, CaseIterable {
        /// As the first duplex enters its full copy.
        case fullCopy = "full_copy"
        /// After pass ``FaultDrill/pass`` of the first duplex.
        case passes
        /// Inside the first duplex's first blackout after the full copy (a look at the dirty set
        /// or the final one), with the CPUs stopped.
        case blackout
        /// As the first duplex's verify starts.
        case verify
        /// ``FaultDrill/afterNanoseconds`` after the first duplex is duplexed.
        case duplexed
    }

    /// `fault.module`.
    package var target: Target = .none
    /// `fault.kind`.
    package var kind: ModuleFault.Kind = .lost
    /// `fault.frame`: the frame of an uncorrectable or correctable error.
    package var frame = 0
    /// `fault.count`: how many faults (correctable errors, one per frame from `frame` on).
    package var count = 1
    /// `fault.during`.
    package var moment: Moment = .duplexed
    /// `fault.pass`: the pass after which a drill `during = "passes"` fires.
    package var pass = 1
    /// `fault.after`: the delay after the duplex is duplexed (nanoseconds).
    package var afterNanoseconds: UInt64 = 0
    /// `fault.replace_after`: a replacement spare arrives this long after a module is removed
    /// (nanoseconds; 0: never, the operator replaces it).
    package var replaceAfterNanoseconds: UInt64 = 0

    /// No drill.
    package init() {}

    /// Whether a fault is to be raised.
    package var isArmed: Bool { target != .none }

    /// The faults to raise.
    package var faults: [ModuleFault] {
        guard let role = target.role else { return [] }
        let times = kind == .correctable ? max(1, count) : 1
        return (0..<times).map { ModuleFault(kind, module: role, frame: frame + $0) }
    }
}
