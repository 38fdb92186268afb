import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes structured entries to the systemd journal with
/// `sd_journal_sendv`.
///
/// Every entry carries `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`, `CODE_FILE`, `CODE_LINE`,
/// `CODE_FUNC`, and each metadata item as an upper-case field (`duplex_pass` → `DUPLEX_PASS`), so
/// that `journalctl -u mirrord DUPLEX_PASS=3` finds the third pass. A `message_id` metadata item
/// becomes `MESSAGE_ID`, which links the entry to its text in the journal catalog.
package struct JournalLogHandler: LogHandler {
    /// Metadata added to every entry (as upper-case journal fields).
    package var metadata: Logger.Metadata = [:]
    /// The least severe level written.
    package var logLevel: Logger.Level = .info
    /// Metadata gathered at each entry (task-local context).
    package var metadataProvider: Logger.MetadataProvider?
    /// The `SYSLOG_IDENTIFIER` of every entry.
    package let identifier: String

    /// Creates a handler whose entries carry `identifier` as `SYSLOG_IDENTIFIER`.
    package init(identifier: String) {
        self.identifier = identifier
    }

    /// One metadata item.
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one entry to the journal.
    package func log(event: LogEvent) {
        guard event.level >= logLevel else { return }
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let fields = Self.fields(event: event, metadata: merged, identifier: identifier)
        Self.send(fields)
    }

    /// The journal fields of one entry, in order (exposed for tests).
    package static func fields(event: LogEvent, metadata: Logger.Metadata, identifier: String) -> [String] {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(priority(event.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name = fieldName(key)
            guard !name.isEmpty, !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(name) else { continue }
            fields.append("\(name)=\(value)")
        }
        return fields
    }

    /// The syslog priority of a swift-log level.
    package static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A journal field name for a metadata key: upper case, letters, digits and `_`, not starting
    /// with `_` (fields starting with `_` are trusted fields only journald sets).
    package static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        while name.first == "_" || name.first?.isNumber == true { name.removeFirst() }
        return String(name.prefix(64))
    }

    private static func send(_ fields: [String]) {
        var storage = fields.map { Array($0.utf8) }
        storage.withUnsafeMutableBufferPointer { buffers in
            var vectors = [iovec]()
            vectors.reserveCapacity(buffers.count)
            for i in buffers.indices {
                buffers[i].withUnsafeMutableBytes { bytes in
                    vectors.append(iovec(iov_base: bytes.baseAddress, iov_len: bytes.count))
                }
            }
            _ = vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }
}
