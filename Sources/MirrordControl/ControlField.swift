/// A field name of a control-protocol object: any string, so that a request's decoder sees every
/// field a client sent, the unknown ones included, and can name them in its error.
package struct ControlField: CodingKey, Sendable, Hashable {
    /// The field's name on the wire.
    package var stringValue: String

    /// The field called `stringValue`.
    package init(stringValue: String) { self.stringValue = stringValue }

    /// The field called `name`.
    package init(_ name: String) { self.stringValue = name }

    /// Always nil: the protocol's objects have named fields only.
    package var intValue: Int? { nil }

    /// Always nil: the protocol's objects have named fields only.
    package init?(intValue: Int) { nil }

    /// `"verb"`: every request's first field.
    package static let verb = ControlField("verb")

    /// The fields of the object `decoder` holds, or ``ControlRequestError/notAnObject``.
    package static func fields(of decoder: any Decoder) throws(ControlRequestError) -> KeyedDecodingContainer<
        ControlField
    > {
        do {
            return try decoder.container(keyedBy: ControlField.self)
        } catch {
            throw .notAnObject
        }
    }

    /// The fields of `verb`'s request object, every one of them `verb` or one of `names`: the first
    /// other one (in sorted order) is refused by name.
    package static func payload(of decoder: any Decoder, verb: ControlVerb, names: [String]) throws(ControlRequestError)
        -> KeyedDecodingContainer<ControlField>
    {
        let fields = try fields(of: decoder)
        let known = Set(names + [ControlField.verb.stringValue])
        if let unknown = fields.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw .unknownField(unknown, verb: verb)
        }
        return fields
    }

    /// What `container` holds under `field`, in a few characters for an error message: `true`,
    /// `1.5`, `-1`, `"spare"`, `null`, `an object`, `an array`.
    package static func describeValue(of field: ControlField, in container: KeyedDecodingContainer<ControlField>)
        -> String
    {
        if (try? container.decodeNil(forKey: field)) == true { return "null" }
        if let value = try? container.decode(Bool.self, forKey: field) { return "\(value)" }
        if let value = try? container.decode(Int.self, forKey: field) { return "\(value)" }
        if let value = try? container.decode(Double.self, forKey: field) { return "\(value)" }
        if let value = try? container.decode(String.self, forKey: field) { return "\"\(value.prefix(40))\"" }
        if (try? container.nestedContainer(keyedBy: ControlField.self, forKey: field)) != nil { return "an object" }
        return "an array"
    }
}
