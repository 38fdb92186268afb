import Foundation
import MirrorCore

/// The `--json` form of a ``DuplexSummary``: one object, keys as documented in the README.
package enum SummaryJSON {
    /// Encodes `summary` as pretty-printed JSON.
    package static func encode(_ summary: DuplexSummary, lifecycle: LifecycleRecord? = nil) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let lifecycle, lifecycle.hasEvents else {
            return String(decoding: try encoder.encode(summary), as: UTF8.self)
        }
        return String(
            decoding: try encoder.encode(WithLifecycle(summary: summary, lifecycle: lifecycle)), as: UTF8.self)
    }

    /// The summary's keys and a `lifecycle` object beside them.
    private struct WithLifecycle: Encodable {
        let summary: DuplexSummary
        let lifecycle: LifecycleRecord

        enum CodingKeys: String, CodingKey { case lifecycle }

        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(lifecycle, forKey: .lifecycle)
        }
    }
}
