import Foundation
import MirrorCore

/// One request of the control protocol: a JSON object on one line, `{"verb": "status"}`, and for
/// `inject-fault` its `kind`, `module` and `frame`. Documented in docs/control.md.
struct ControlRequest: Sendable, Decodable {
    /// What the client asks.
    enum Verb: String, Sendable, CaseIterable, Decodable {
        case status
        case injectFault = "inject-fault"
        case replaceSpare = "replace-spare"
        case reduplex
        case scrub
    }

    var verb: Verb
    var kind: ModuleFault.Kind?
    var module: ModuleRole?
    var frame: Int?

    /// Why a line is not a request.
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// The request on `line` (without its newline).
    static func parse(_ line: Data) throws(Invalid) -> ControlRequest {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw Invalid(description: "not a JSON object on one line")
        }
        guard let verb = object["verb"] as? String else { throw Invalid(description: "no \"verb\"") }
        guard let known = Verb(rawValue: verb) else {
            throw Invalid(
                description:
                    "unknown verb \"\(verb.prefix(40))\"; known: \(Verb.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        var request = ControlRequest(verb: known)
        if let kind = object["kind"] {
            guard let name = kind as? String, let value = ModuleFault.Kind(rawValue: name) else {
                throw Invalid(
                    description:
                        "\"kind\" must be one of \(ModuleFault.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            request.kind = value
        }
        if let module = object["module"] {
            guard let name = module as? String, let value = ModuleRole(rawValue: name) else {
                throw Invalid(description: "\"module\" must be active or spare")
            }
            request.module = value
        }
        if let frame = object["frame"] {
            guard let number = frame as? Int, number >= 0 else {
                throw Invalid(description: "\"frame\" must be a non-negative integer")
            }
            request.frame = number
        }
        if known == .injectFault && request.kind == nil { throw Invalid(description: "inject-fault needs \"kind\"") }
        return request
    }
}

extension ModuleRole: Decodable {}
extension ModuleFault.Kind: Decodable {}
