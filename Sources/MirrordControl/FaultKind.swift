/// The kinds of module fault a client may inject, as the wire names them.
///
/// The protocol's own enum (not the engine's `ModuleFault.Kind`), so that `mirrorctl` links
/// nothing of the engine; the daemon maps one onto the other.
package enum FaultKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// The whole module stops answering.
    case lost
    /// One frame's data cannot be corrected: it is lost on that module.
    case uncorrectable
    /// One frame needed correcting; nothing is lost, but many predict a failure.
    case correctable
}
