import MirrordConfig
import Synchronization

/// The configuration in force and where it came from, shared by the services: a reload replaces
/// it only when the new file is valid.
package final class RunningConfiguration: Sendable {
    /// The file given with `--config`, or nil for the built-in defaults.
    package let path: String?
    private let state: Mutex<MirrordConfiguration>

    /// The configuration loaded from `path` (nil: the built-in defaults).
    package init(path: String?, configuration: MirrordConfiguration) {
        self.path = path
        self.state = Mutex(configuration)
    }

    /// The configuration in force.
    package var current: MirrordConfiguration { state.withLock { $0 } }

    /// Puts `configuration` in force and returns the one it replaced.
    package func replace(with configuration: MirrordConfiguration) -> MirrordConfiguration {
        state.withLock { old in
            defer { old = configuration }
            return old
        }
    }
}
