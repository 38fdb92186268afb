/// The reply to `status`: where the service stands, the engine's progress, the modules' history and
/// the configuration in force (docs/control.md). On the wire inside ``ControlReply``, which adds
/// `"ok": true`.
package struct StatusReply: Sendable, Hashable, Codable {
    /// The daemon's ``MirrordVersion``.
    package var version: String
    /// Where the service stands.
    package var state: ServiceStateName
    /// The service's `STATUS=` line.
    package var status: String
    /// Whether a spare module is installed.
    package var spareInstalled: Bool
    /// The engine's progress.
    package var progress: ProgressReport
    /// What happened to the pair so far.
    package var lifecycle: LifecycleReport
    /// A few keys in force, as the configuration file writes them (`memory.size` → `"1GiB"`).
    package var configuration: [String: String]

    /// A status of every value; the version defaults to this build's.
    package init(
        version: String = MirrordVersion.string, state: ServiceStateName, status: String, spareInstalled: Bool,
        progress: ProgressReport, lifecycle: LifecycleReport, configuration: [String: String]
    ) {
        self.version = version
        self.state = state
        self.status = status
        self.spareInstalled = spareInstalled
        self.progress = progress
        self.lifecycle = lifecycle
        self.configuration = configuration
    }

    /// The wire's names (docs/control.md).
    enum CodingKeys: String, CodingKey {
        case version, state, status, progress, lifecycle, configuration
        case spareInstalled = "spare_installed"
    }
}
