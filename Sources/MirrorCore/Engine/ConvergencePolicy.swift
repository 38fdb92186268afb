/// What the engine does when the CPUs dirty frames faster than the passes copy them
/// (`duplex.convergence`).
public enum ConvergencePolicy: String, Sendable, Hashable, CaseIterable, Encodable {
    /// Limit only the CPUs whose dirty rate exceeds what the copy can absorb within the blackout
    /// target; a CPU that writes little runs at full speed (like QEMU's dirty-limit).
    case dirtyLimit = "dirty-limit"
    /// Slow every CPU alike, in steps: the first step, then one increment per pass that does not
    /// converge, up to the maximum (like QEMU's auto-converge).
    case throttle
    /// Never slow the CPUs: the passes end at the threshold, the target, the pass limit or a stall,
    /// and the blackout copies whatever is dirty.
    case none
}
