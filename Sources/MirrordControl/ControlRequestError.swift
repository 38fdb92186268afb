/// Why a line is not a request of the control protocol. The daemon sends ``description`` back as
/// `{"ok":false,"error":"…"}` and the connection serves on.
package enum ControlRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The line is not one JSON object (garbage, an array, a bare string or number).
    case notAnObject
    /// A required field is missing: `verb` from any request (`verb` nil), `kind` from
    /// `inject-fault`.
    case missingField(String, verb: ControlVerb?)
    /// The verb is none of ``ControlVerb``'s.
    case unknownVerb(String)
    /// A field the verb does not take (a misspelling, or a field of another verb).
    case unknownField(String, verb: ControlVerb)
    /// A field of the wrong kind or out of range: `frame` given `true`, `1.5` or `-1`.
    case invalidField(String, expected: String, found: String)

    /// One line for the client, for example `"frame" must be a non-negative integer, not true`.
    package var description: String {
        switch self {
        case .notAnObject:
            "not a JSON object on one line"
        case .missingField(let field, nil):
            "a request needs \"\(field)\": one of \(ControlVerb.known)"
        case .missingField(let field, .some(let verb)):
            "\(verb.rawValue) needs \"\(field)\""
        case .unknownVerb(let verb):
            "unknown verb \"\(verb.prefix(40))\"; known: \(ControlVerb.known)"
        case .unknownField(let field, let verb):
            switch verb {
            case .injectFault:
                "unknown field \"\(field.prefix(40))\" in inject-fault; it takes \(FaultInjection.fieldNames.joined(separator: ", "))"
            case .takeOver:
                "unknown field \"\(field.prefix(40))\" in take-over; it takes \(TakeoverRequest.fieldNames.joined(separator: ", "))"
            case .status, .replaceSpare, .reduplex, .scrub, .watch:
                "unknown field \"\(field.prefix(40))\": \(verb.rawValue) takes no field but \"verb\""
            }
        case .invalidField(let field, let expected, let found):
            "\"\(field)\" must be \(expected), not \(found)"
        }
    }
}
