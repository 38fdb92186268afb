import Foundation

/// How both ends write the protocol's lines: compact JSON with sorted keys and unescaped slashes,
/// so that a reply reads the same from every daemon and a test can compare lines.
package enum ControlCoding {
    /// The encoder of requests and replies (a newline is the caller's to add).
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `request` as one line, without its newline.
    package static func line(for request: ControlRequest) throws(EncodingError) -> Data {
        do {
            return try encoder().encode(request)
        } catch let error as EncodingError {
            throw error
        } catch {
            throw EncodingError.invalidValue(request, .init(codingPath: [], debugDescription: "\(error)"))
        }
    }

    /// `reply` as one line, without its newline; a reply that cannot be encoded (a number that
    /// JSON cannot write) becomes an error reply that says so, never a broken line.
    package static func line(for reply: ControlReply) -> Data {
        (try? encoder().encode(reply))
            ?? (try? encoder().encode(ControlReply.refused(ControlRefusal(error: "cannot encode the reply"))))
            ?? Data(#"{"ok":false}"#.utf8)
    }
}
