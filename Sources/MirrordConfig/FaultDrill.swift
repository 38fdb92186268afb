import MirrorCore

/// A module fault the service raises on purpose (`[fault]` `module`, `kind`, `frame`, `count`,
/// `during`, `pass`, `after`, `replace_after`): to demonstrate and test failover, simplex and re-duplex.
public struct FaultDrill: Sendable, Hashable {
    /// The module that fails, or none.
    public enum Target: String, Sendable, Hashable, CaseIterable {
        /// No drill.
        case none
        /// The active module.
        case active
        /// The spare module.
        case spare

        /// The module's role, when one is named.
        public var role: ModuleRole? {
            switch self {
            case .none: nil
            case .active: .active
            case .spare: .spare
            }
        }
    }

    /// When the fault is raised: in a phase of the first duplex, or once duplexed.
    public enum Moment: String, Sendable, Hashable, CaseIterable {
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
    public var target: Target = .none
    /// `fault.kind`.
    public var kind: ModuleFault.Kind = .lost
    /// `fault.frame`: the frame of an uncorrectable or correctable error.
    public var frame = 0
    /// `fault.count`: how many faults (correctable errors, one per frame from `frame` on).
    public var count = 1
    /// `fault.during`.
    public var moment: Moment = .duplexed
    /// `fault.pass`: the pass after which a drill `during = "passes"` fires.
    public var pass = 1
    /// `fault.after`: the delay after the duplex is duplexed (nanoseconds).
    public var afterNanoseconds: UInt64 = 0
    /// `fault.replace_after`: a replacement spare arrives this long after a module is removed
    /// (nanoseconds; 0: never, the operator replaces it).
    public var replaceAfterNanoseconds: UInt64 = 0

    /// No drill.
    public init() {}

    /// Whether a fault is to be raised.
    public var isArmed: Bool { target != .none }

    /// The faults to raise.
    public var faults: [ModuleFault] {
        guard let role = target.role else { return [] }
        let times = kind == .correctable ? max(1, count) : 1
        return (0..<times).map { ModuleFault(kind, module: role, frame: frame + $0) }
    }
}
