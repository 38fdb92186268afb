import Foundation
import Logging
import Testing

@testable import MirrorSystemd

@Suite("Journal entries and notifications")
struct JournalLogHandlerTests {
    @Test("an entry carries priority, identifier, code location and the metadata as upper-case fields")
    func fields() {
        let event = LogEvent(
            level: .error, message: "verify failed", metadata: nil, source: "mirrord",
            file: "Sources/mirrord/X.swift", function: "observe(_:)", line: 42)
        let fields = JournalLogHandler.fields(
            event: event,
            metadata: [
                "duplex_pass": "3", "message_id": "\(MessageID.verifyFailed.rawValue)", "mirrord_state": "verify",
                "priority": "0", "_PID": "1",
            ],
            identifier: "mirrord")
        #expect(
            fields.prefix(6) == [
                "MESSAGE=verify failed", "PRIORITY=3", "SYSLOG_IDENTIFIER=mirrord",
                "CODE_FILE=Sources/mirrord/X.swift", "CODE_LINE=42", "CODE_FUNC=observe(_:)",
            ])
        #expect(fields.contains("DUPLEX_PASS=3"))
        #expect(fields.contains("MIRRORD_STATE=verify"))
        #expect(fields.contains("MESSAGE_ID=\(MessageID.verifyFailed.rawValue)"))
        #expect(!fields.contains("PRIORITY=0"), "metadata must not override the priority")
        #expect(fields.contains("PID=1"), "a leading underscore is stripped: journald reserves _FIELDS")
    }

    @Test("field names are sanitised for the journal")
    func names() {
        #expect(JournalLogHandler.fieldName("duplex_pass") == "DUPLEX_PASS")
        #expect(JournalLogHandler.fieldName("sl-service") == "SL_SERVICE")
        #expect(JournalLogHandler.fieldName("9lives") == "LIVES")
    }

    @Test("levels map to syslog priorities")
    func priorities() {
        #expect(JournalLogHandler.priority(.info) == 6)
        #expect(JournalLogHandler.priority(.warning) == 4)
        #expect(JournalLogHandler.priority(.error) == 3)
        #expect(JournalLogHandler.priority(.critical) == 2)
    }

    @Test("message ids are 128-bit hex, distinct")
    func messageIDs() {
        let ids = MessageID.allCases.map(\.rawValue)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("a status text stays one line")
    func oneLine() {
        #expect(SystemdNotifier.oneLine("a\nREADY=1") == "a READY=1")
    }
}

@Suite("Journal catalog")
struct CatalogTests {
    @Test("systemd/mirrord.catalog explains every MESSAGE_ID mirrord logs")
    func catalogCoversEveryID() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd/mirrord.catalog").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for id in MessageID.allCases {
            #expect(text.contains("-- \(id.rawValue)\nSubject: "), "no catalog entry for \(id)")
        }
    }
}
