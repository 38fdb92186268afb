import Foundation
import MirrorCore

extension DuplexSummary {
    /// The summary as a JSON object, through the same Codable path the command uses.
    func jsonObject() throws -> [String: Any] {
        let data = try JSONEncoder().encode(self)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }
}
