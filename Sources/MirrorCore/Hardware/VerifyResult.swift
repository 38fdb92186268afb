/// What one verify call found when comparing spare frames with active frames.
public struct VerifyResult: Sendable, Hashable {
    /// How many frames were compared.
    public var checked: Int
    /// How many of them differ between the modules.
    public var mismatches: Int
    /// How many differing frame numbers were written to the output vector (at most its capacity;
    /// mismatches beyond it are counted but not listed).
    public var reported: Int

    /// Creates a result.
    public init(checked: Int = 0, mismatches: Int = 0, reported: Int = 0) {
        self.checked = checked
        self.mismatches = mismatches
        self.reported = reported
    }
}
