import Foundation
import MirrorCore

/// The `--json` form of a ``DuplexSummary``: one object, keys as documented in the README.
public enum SummaryJSON {
    /// Encodes `summary` as pretty-printed JSON.
    public static func encode(_ summary: DuplexSummary) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(summary), as: UTF8.self)
    }
}
