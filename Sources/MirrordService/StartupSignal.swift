import CMirrorShims

#if canImport(Glibc)
import Glibc
#endif

/// The SIGTERM or SIGINT that arrived while the service was starting, before its own handlers.
///
/// Handlers that record SIGTERM and SIGINT (and ignore SIGHUP) are installed first thing in the
/// process, so that no signal kills it while the machine is built; the service group's own
/// handlers replace them once it runs.
package enum StartupSignal {
    /// Installs the recording handlers (first thing in `main`).
    package static func install() { mirrord_startup_signals_install() }

    /// Puts the default actions of SIGTERM, SIGINT and SIGHUP back, for commands that are not the
    /// service; a SIGTERM or SIGINT recorded before acts now. SIGPIPE stays ignored: a write to a
    /// reader that has gone fails with EPIPE, which the writer reports.
    package static func restoreDefaults() { mirrord_startup_signals_restore() }

    /// The signal's name, or nil when none arrived.
    package static var received: String? {
        switch mirrord_startup_signal() {
        case 0: nil
        case SIGINT: "SIGINT"
        default: "SIGTERM"
        }
    }
}
