/// The payload of `take-over`: where this host records each start of the machine, and whether
/// the caller has compared the exports already.
///
/// On the wire `{"verb":"take-over","start_record":"/var/lib/mirrord/export.img.machine-started"}`,
/// with `"compared": true` once the caller compared this host's export with the peer's. Both are
/// optional: `{"verb":"take-over"}` takes over from whatever the export holds and records nothing.
/// With `start_record`, the takeover goes on only when it knows this host's export to be the
/// newest there is (its generation past the recorded start), or when `compared`; otherwise it is
/// refused with ``ControlRefusal/Reason/notKnownNewest`` and keeps waiting.
package struct TakeoverRequest: Sendable, Hashable, Codable {
    /// The file of this host's machine starts (the agent's `IMAGE.machine-started`), or nil.
    package var startRecord: String?
    /// The caller compared this host's export with the peer's and found it not older.
    package var compared: Bool

    /// A request recording in `startRecord` (if any), `compared` or not.
    package init(startRecord: String? = nil, compared: Bool = false) {
        self.startRecord = startRecord
        self.compared = compared
    }

    /// How long a `take-over` reply may take, at most (seconds): it comes once the CPUs run, after
    /// a replay of up to a journal half. The daemon answers by then, a client waits as long.
    package static let replySeconds = 120

    /// The fields `take-over` takes besides `verb`, in the order the protocol documents them.
    package static let fieldNames = ["start_record", "compared"]

    /// Decodes the fields of a `take-over` object, refusing anything else with a
    /// ``ControlRequestError`` that names the field.
    package init(from decoder: any Decoder) throws {
        let fields = try ControlField.payload(of: decoder, verb: .takeOver, names: Self.fieldNames)
        startRecord = try Self.optional(
            "start_record", String.self, expected: "an absolute path", in: fields, valid: { $0.hasPrefix("/") })
        compared = try Self.optional("compared", Bool.self, expected: "true or false", in: fields) ?? false
    }

    /// The value of the field `name`, nil when absent; one that is not a `T` that passes `valid` is
    /// refused, naming what was `expected` and what was found.
    private static func optional<T: Decodable>(
        _ name: String, _: T.Type, expected: String, in fields: KeyedDecodingContainer<ControlField>,
        valid: (T) -> Bool = { _ in true }
    ) throws(ControlRequestError) -> T? {
        let field = ControlField(name)
        guard fields.contains(field) else { return nil }
        guard let value = try? fields.decode(T.self, forKey: field), valid(value) else {
            throw .invalidField(name, expected: expected, found: ControlField.describeValue(of: field, in: fields))
        }
        return value
    }

    /// Encodes `start_record` when there is one, and `compared`.
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: ControlField.self)
        if let startRecord { try fields.encode(startRecord, forKey: ControlField("start_record")) }
        try fields.encode(compared, forKey: ControlField("compared"))
    }
}
