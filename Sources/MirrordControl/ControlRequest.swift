import Foundation

/// One request of the control protocol: a JSON object on one line, `{"verb":"status"}`, with the
/// verb's payload beside it (docs/control.md). The daemon decodes it, `mirrorctl` encodes it.
///
/// Decoding is strict, and every refusal is a ``ControlRequestError`` naming what is wrong: an
/// unknown verb, a field the verb does not take, a missing required field, a field of the wrong
/// kind. A client's typo is answered, never guessed at.
package enum ControlRequest: Sendable, Hashable, Codable {
    /// Where the pair stands.
    case status
    /// Raise a module fault, as the hardware would.
    case injectFault(FaultInjection)
    /// Install a replacement spare.
    case replaceSpare
    /// Duplex the installed spare.
    case reduplex
    /// Compare the next scrub slice now.
    case scrub
    /// Where the pair stands, from a client that follows it (a last status comes when the
    /// daemon stops).
    case watch
    /// Take over now (a takeover waiting to be asked).
    case takeOver(TakeoverRequest)

    /// The request's verb.
    package var verb: ControlVerb {
        switch self {
        case .status: .status
        case .injectFault: .injectFault
        case .replaceSpare: .replaceSpare
        case .reduplex: .reduplex
        case .scrub: .scrub
        case .watch: .watch
        case .takeOver: .takeOver
        }
    }

    /// The request on `line` (one JSON object, without its newline).
    package init(line: Data) throws(ControlRequestError) {
        do {
            self = try JSONDecoder().decode(ControlRequest.self, from: line)
        } catch let error as ControlRequestError {
            throw error
        } catch {
            throw .notAnObject  // not JSON at all: the decoder found no object to hand over
        }
    }

    /// Decodes `verb`, then the verb's payload; a verb without payload takes no other field.
    package init(from decoder: any Decoder) throws {
        let fields = try ControlField.fields(of: decoder)
        guard fields.contains(.verb) else { throw ControlRequestError.missingField("verb", verb: nil) }
        guard let name = try? fields.decode(String.self, forKey: .verb) else {
            throw ControlRequestError.invalidField(
                "verb", expected: "one of \(ControlVerb.known)",
                found: ControlField.describeValue(of: .verb, in: fields))
        }
        guard let verb = ControlVerb(rawValue: name) else { throw ControlRequestError.unknownVerb(name) }
        switch verb {
        case .injectFault:
            self = .injectFault(try FaultInjection(from: decoder))
            return
        case .status: self = .status
        case .replaceSpare: self = .replaceSpare
        case .reduplex: self = .reduplex
        case .scrub: self = .scrub
        case .watch: self = .watch
        case .takeOver:
            self = .takeOver(try TakeoverRequest(from: decoder))
            return
        }
        _ = try ControlField.payload(of: decoder, verb: verb, names: [])
    }

    /// Encodes `verb` and the payload's fields in one object.
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: ControlField.self)
        try fields.encode(verb, forKey: .verb)
        switch self {
        case .injectFault(let fault): try fault.encode(to: encoder)
        case .takeOver(let request): try request.encode(to: encoder)
        case .status, .replaceSpare, .reduplex, .scrub, .watch: break
        }
    }
}
