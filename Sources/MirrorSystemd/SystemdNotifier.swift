import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's side of the sd_notify protocol: readiness, status text, watchdog keep-alives,
/// reload and stop announcements, sent to the socket systemd names in `NOTIFY_SOCKET`.
///
/// Outside systemd (no `NOTIFY_SOCKET`) every call is a cheap no-op, so callers need not check.
package struct SystemdNotifier: Sendable {
    /// Whether systemd is listening (`NOTIFY_SOCKET` is set).
    package let isActive: Bool
    /// The watchdog interval systemd asked for (`WatchdogSec=`), or nil when there is none.
    package let watchdogInterval: Duration?

    /// Where notifications go: systemd's socket, or a test's recorder.
    private let sink: (@Sendable (String) -> Bool)?

    /// Reads the environment systemd gave the process.
    package init() {
        isActive = getenv("NOTIFY_SOCKET") != nil
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 ? .microseconds(Int64(usec)) : nil
        sink = nil
    }

    /// A notifier that hands each notification (its lines joined by newlines) to `sink` instead of
    /// systemd, with the watchdog interval systemd would have given: for tests of what a service
    /// tells systemd.
    package init(watchdogInterval: Duration?, sink: @escaping @Sendable (String) -> Void) {
        isActive = true
        self.watchdogInterval = watchdogInterval
        self.sink = { message in
            sink(message)
            return true
        }
    }

    /// Sends raw `KEY=value` lines; returns whether systemd received them.
    @discardableResult
    package func send(_ lines: [String]) -> Bool {
        guard isActive, !lines.isEmpty else { return false }
        let message = lines.joined(separator: "\n")
        if let sink { return sink(message) }
        return sd_notify(0, message) > 0
    }

    /// `READY=1`, with a status text.
    package func ready(status: String) { send(["READY=1", "STATUS=\(Self.oneLine(status))"]) }

    /// `STATUS=`: one short line for `systemctl status`.
    package func status(_ text: String) { send(["STATUS=\(Self.oneLine(text))"]) }

    /// `WATCHDOG=1`: the service is alive and making progress.
    package func watchdog() { send(["WATCHDOG=1"]) }

    /// `RELOADING=1` with the `MONOTONIC_USEC=` systemd 253+ expects, then a status text.
    package func reloading(status: String) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
        send(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=\(Self.oneLine(status))"])
    }

    /// `STOPPING=1`, with a status text.
    package func stopping(status: String) { send(["STOPPING=1", "STATUS=\(Self.oneLine(status))"]) }

    /// `STATUS=` and `ERRNO=` before a fatal exit.
    package func fatal(status: String, errno code: Int32) {
        send(["STATUS=\(Self.oneLine(status))", "ERRNO=\(code)"])
    }

    /// Status texts are single lines: a newline would start a new assignment.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }
}
