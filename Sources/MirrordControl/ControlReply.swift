import Foundation

/// One reply of the control protocol, a JSON object on one line: `"ok": true` with a status or an
/// acknowledgement, or `"ok": false` with the error.
///
/// The daemon's handler returns one and the server encodes it (`ControlCoding.line(for:)`);
/// `mirrorctl` decodes it. `ok` belongs to this envelope: the payload types hold only their fields.
package enum ControlReply: Sendable, Hashable, Codable {
    /// The reply to `status`.
    case status(StatusReply)
    /// An action taken in.
    case acknowledged(ControlAcknowledgement)
    /// A request not carried out.
    case refused(ControlRefusal)

    /// Whether the request was carried out: the wire's `ok`.
    package var isOK: Bool {
        if case .refused = self { return false }
        return true
    }

    /// The reply on `line` (without its newline).
    package init(line: Data) throws(ControlReplyError) {
        do {
            self = try JSONDecoder().decode(ControlReply.self, from: line)
        } catch {
            throw ControlReplyError(reason: Self.explain(error))
        }
    }

    /// Decodes by `ok` and the fields present: `ok: false` is a refusal, an `action` an
    /// acknowledgement, anything else a status (whose own fields must then all be there).
    package init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: ControlField.self)
        if try !fields.decode(Bool.self, forKey: ControlField("ok")) {
            self = .refused(try ControlRefusal(from: decoder))
        } else if fields.contains(ControlField("action")) {
            self = .acknowledged(try ControlAcknowledgement(from: decoder))
        } else {
            self = .status(try StatusReply(from: decoder))
        }
    }

    /// Encodes the payload's fields and `ok` in one object.
    package func encode(to encoder: any Encoder) throws {
        switch self {
        case .status(let status): try status.encode(to: encoder)
        case .acknowledged(let acknowledgement): try acknowledgement.encode(to: encoder)
        case .refused(let refusal): try refusal.encode(to: encoder)
        }
        var envelope = encoder.container(keyedBy: ControlField.self)
        try envelope.encode(isOK, forKey: ControlField("ok"))
    }

    /// A decoding error in a few words: which field, and what was wrong with it.
    private static func explain(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "no \"\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return context.codingPath.isEmpty ? "not a JSON object" : "\"\(path(context))\" is of the wrong kind"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "\"\(path(context))\" is not valid"
        case nil:
            return "\(error)"
        @unknown default:
            return "\(error)"
        }
    }
}
