import Logging
import MirrorCore
import MirrorSystemd
import MirrordConfig

extension Logger {
    /// Logs a rejected configuration as an error entry with the catalog's `MESSAGE_ID` and the
    /// file, line and key as journal fields (`CONFIG_FILE`, `CONFIG_LINE`, `CONFIG_KEY`).
    func configurationRejected(_ error: ConfigurationError, _ message: String) {
        self.error(
            "\(message)",
            metadata: [
                "message_id": "\(MessageID.configurationRejected.rawValue)",
                "config_file": "\(error.source)", "config_line": "\(error.line)",
                "config_key": "\(error.key ?? "")",
            ])
    }
}
