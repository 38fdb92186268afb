/// The module a fault is injected on, by its role, as the wire names it.
///
/// The protocol's own enum (not the engine's `ModuleRole`), so that `mirrorctl` links nothing of
/// the engine; the daemon maps one onto the other.
package enum FaultModule: String, Sendable, Hashable, CaseIterable, Codable {
    /// The module the CPUs and the DMA engine run on.
    case active
    /// The module kept equal to it.
    case spare
}
