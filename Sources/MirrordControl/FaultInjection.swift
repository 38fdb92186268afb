/// The payload of `inject-fault`: which fault, on which module, at which frame.
///
/// On the wire `{"verb":"inject-fault","kind":"lost","module":"spare","frame":12}`: `kind` is
/// required, `module` defaults to `active` and `frame` to 0 (a lost module has no frame). Decoding
/// is strict (``init(from:)``): a fault drill that raises a different fault than the operator
/// meant is worse than a refusal.
package struct FaultInjection: Sendable, Hashable, Codable {
    /// What happens.
    package var kind: FaultKind
    /// The module it happens on.
    package var module: FaultModule
    /// The frame of an uncorrectable or correctable error (ignored for a lost module).
    package var frame: Int

    /// A fault of `kind` on `module` at `frame`.
    package init(kind: FaultKind, module: FaultModule = .active, frame: Int = 0) {
        self.kind = kind
        self.module = module
        self.frame = frame
    }

    /// The fields `inject-fault` takes besides `verb`, in the order the protocol documents them.
    package static let fieldNames = ["kind", "module", "frame"]

    /// Decodes the fields of an `inject-fault` object, refusing what is not exactly one of its
    /// fields (`verb` aside) with a ``ControlRequestError`` that names the field: a Bool, a
    /// fraction or a negative number is not a frame.
    package init(from decoder: any Decoder) throws {
        let fields = try ControlField.payload(of: decoder, verb: .injectFault, names: Self.fieldNames)
        let kindField = ControlField("kind")
        guard fields.contains(kindField) else { throw ControlRequestError.missingField("kind", verb: .injectFault) }
        kind = try Self.decodeName(FaultKind.self, kindField, in: fields)
        let moduleField = ControlField("module")
        module = fields.contains(moduleField) ? try Self.decodeName(FaultModule.self, moduleField, in: fields) : .active
        let frameField = ControlField("frame")
        if fields.contains(frameField) {
            guard let frame = try? fields.decode(Int.self, forKey: frameField), frame >= 0 else {
                throw ControlRequestError.invalidField(
                    "frame", expected: "a non-negative integer",
                    found: ControlField.describeValue(of: frameField, in: fields))
            }
            self.frame = frame
        } else {
            frame = 0
        }
    }

    /// The value of one of `Name`'s raw values under `field`, or an error listing them.
    private static func decodeName<Name: RawRepresentable & CaseIterable>(
        _: Name.Type, _ field: ControlField, in fields: KeyedDecodingContainer<ControlField>
    ) throws(ControlRequestError) -> Name where Name.RawValue == String {
        guard let raw = try? fields.decode(String.self, forKey: field), let value = Name(rawValue: raw) else {
            throw ControlRequestError.invalidField(
                field.stringValue, expected: "one of \(Name.allCases.map(\.rawValue).joined(separator: ", "))",
                found: ControlField.describeValue(of: field, in: fields))
        }
        return value
    }

    /// Encodes `kind`, `module` and `frame`, every one explicitly.
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: ControlField.self)
        try fields.encode(kind, forKey: ControlField("kind"))
        try fields.encode(module, forKey: ControlField("module"))
        try fields.encode(frame, forKey: ControlField("frame"))
    }
}
