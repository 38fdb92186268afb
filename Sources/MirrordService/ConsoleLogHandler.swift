import Logging

/// A swift-log handler that writes one plain line per entry to standard error:
/// `mirrord: message`, with the level for warnings and errors. Used when not under systemd.
struct ConsoleLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= logLevel else { return }
        let prefix: String
        switch event.level {
        case .trace, .debug, .info, .notice: prefix = "mirrord: "
        case .warning: prefix = "mirrord: warning: "
        case .error: prefix = "mirrord: error: "
        case .critical: prefix = "mirrord: critical: "
        }
        writeStandardError(prefix + event.message.description + "\n")
    }
}
