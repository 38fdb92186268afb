/// How the service answers module faults and replacements: whether a replaced spare is duplexed
/// at once, and when correctable errors predict a module's failure.
public struct FaultTolerancePolicy: Sendable, Hashable {
    /// Start a duplex as soon as a replacement spare is installed (or a suspect spare is dropped);
    /// when false the operator starts it.
    public var autoReduplex = true
    /// Correctable errors on one module within ``correctableWindowNanoseconds`` that predict its
    /// failure (0: never).
    public var correctableLimit = 10
    /// The window of ``correctableLimit``, nanoseconds.
    public var correctableWindowNanoseconds: UInt64 = 24 * 3_600 * 1_000_000_000

    /// The defaults.
    public init() {}
}
