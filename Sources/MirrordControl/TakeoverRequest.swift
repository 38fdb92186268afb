/// The payload of `take-over`: where this host records each start of the machine, and whether
/// the caller has compared the exports already; or, for a takeover told to go another way, which
/// telling's outcome the caller waits for.
///
/// On the wire `{"verb":"take-over","start_record":"/var/lib/mirrord/export.img.machine-started"}`,
/// with `"compared": true` once the caller compared this host's export with the peer's. Both are
/// optional: `{"verb":"take-over"}` takes over from whatever the export holds and records nothing.
/// With `start_record`, the takeover goes on only when it knows this host's export to be the
/// newest there is (its generation past the recorded start), or when `compared`; otherwise it is
/// refused with ``ControlRefusal/Reason/notKnownNewest`` and keeps waiting.
///
/// `{"verb":"take-over","told":"4711-523.17"}` asks nothing: the takeover was told to go by the
/// line `go 4711-523.17` on its go FIFO (`mirrord takeover --on-request --go-fifo`, which names
/// the start record too), so that no client's start lies between the caller's decision and the
/// takeover; the reply is that takeover's outcome, as a `take-over`'s would be. A takeover that
/// reads no go FIFO refuses it with ``ControlRefusal/Reason/notTold``.
package struct TakeoverRequest: Sendable, Hashable, Codable {
    /// The file of this host's machine starts (the agent's `IMAGE.machine-started`), or nil.
    package var startRecord: String?
    /// The caller compared this host's export with the peer's and found it not older.
    package var compared: Bool
    /// The token of the go line that told the takeover to go, whose outcome the reply carries; nil
    /// for a request that asks itself.
    package var told: String?

    /// A request recording in `startRecord` (if any), `compared` or not.
    package init(startRecord: String? = nil, compared: Bool = false) {
        self.startRecord = startRecord
        self.compared = compared
        self.told = nil
    }

    /// The request for the outcome of the takeover the go line with `token` told to go.
    package init(told token: String) {
        self.startRecord = nil
        self.compared = false
        self.told = token
    }

    /// Whether `token` can name a go line: 1 to 64 of `A-Z a-z 0-9 . _ -` (a FIFO's line, a
    /// journal field).
    package static func isToken(_ token: String) -> Bool {
        (1...64).contains(token.utf8.count)
            && token.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }

    /// How long a `take-over` reply may take, at most (seconds): it comes once the CPUs run, after
    /// a replay of up to a journal half. The daemon answers by then, a client waits as long.
    package static let replySeconds = 120

    /// The fields `take-over` takes besides `verb`, in the order the protocol documents them.
    package static let fieldNames = ["start_record", "compared", "told"]

    /// Decodes the fields of a `take-over` object, refusing anything else with a
    /// ``ControlRequestError`` that names the field.
    package init(from decoder: any Decoder) throws {
        let fields = try ControlField.payload(of: decoder, verb: .takeOver, names: Self.fieldNames)
        startRecord = try Self.optional(
            "start_record", String.self, expected: "an absolute path", in: fields, valid: { $0.hasPrefix("/") })
        compared = try Self.optional("compared", Bool.self, expected: "true or false", in: fields) ?? false
        told = try Self.optional(
            "told", String.self, expected: "a go line's token (1 to 64 of A-Z a-z 0-9 . _ -)", in: fields,
            valid: Self.isToken)
        // A told takeover records its start where its go FIFO's start said, compared by no one.
        if told != nil, startRecord != nil || compared {
            let name = startRecord != nil ? "start_record" : "compared"
            throw ControlRequestError.invalidField(
                name, expected: "absent beside told",
                found: ControlField.describeValue(of: ControlField(name), in: fields))
        }
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

    /// Encodes `told` alone when there is one; else `start_record` when there is one, and
    /// `compared`.
    package func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: ControlField.self)
        if let told {
            try fields.encode(told, forKey: ControlField("told"))
            return
        }
        if let startRecord { try fields.encode(startRecord, forKey: ControlField("start_record")) }
        try fields.encode(compared, forKey: ControlField("compared"))
    }
}
