import MirrorCore

/// Reads typed values out of the file and the overrides, remembering what was read, so that what
/// is left over can be rejected as unknown.
struct FieldReader {
    struct Located {
        var value: ConfigValue
        var source: String
        var line: Int
    }

    private var fields: [String: Located] = [:]
    private var unread: Set<String> = []

    init(file: ConfigurationFile, environment: [String: String]) throws(ConfigurationError) {
        for entry in file.entries {
            fields[entry.name] = Located(value: entry.value, source: file.source, line: entry.line)
        }
        for (variable, text) in environment where variable.hasPrefix(ConfigurationLoader.environmentPrefix) {
            let name = String(variable.dropFirst(ConfigurationLoader.environmentPrefix.count)).lowercased()
            guard let split = name.firstIndex(of: "_") else {
                throw ConfigurationError(
                    source: "environment \(variable)", line: 0, key: nil,
                    message: "not a configuration override (expected MIRRORD_SECTION_KEY)")
            }
            let key = "\(name[..<split]).\(name[name.index(after: split)...])"
            if let control = QuotedValue.firstControlCharacter(in: text) {
                throw ConfigurationError(
                    source: "environment \(variable)", line: 0, key: key,
                    message:
                        "control character \(control) in the value \(QuotedValue(text)); write the value on one line of plain text"
                )
            }
            guard ConfigurationKeys.byName[key] != nil else {
                throw ConfigurationError(
                    source: "environment \(variable)", line: 0, key: key,
                    message: "unknown key; overrides are named after the keys of mirrord.conf")
            }
            let value: ConfigValue
            if let parsed = try? ConfigurationFile(text: "[e]\nv = \(text)", source: variable).entries.first?.value {
                value = parsed
            } else {
                value = .string(text)
            }
            fields[key] = Located(value: value, source: "environment \(variable)", line: 0)
        }
        unread = Set(fields.keys)
    }

    func error(_ key: String, _ message: String, orKey fallback: String? = nil) -> ConfigurationError {
        if let at = fields[key] ?? fallback.flatMap({ fields[$0] }) {
            return ConfigurationError(source: at.source, line: at.line, key: key, message: message)
        }
        return ConfigurationError(source: "(built-in defaults)", line: 0, key: key, message: message)
    }

    /// Whether the file or the environment sets `key`.
    func isSet(_ key: String) -> Bool { fields[key] != nil }

    private mutating func take(_ key: String) -> Located? {
        precondition(ConfigurationKeys.byName[key] != nil, "\(key) is not in the key table")
        unread.remove(key)
        return fields[key]
    }

    private func wrongType(_ key: String, _ at: Located, expected: String) -> ConfigurationError {
        ConfigurationError(
            source: at.source, line: at.line, key: key,
            message: "expected \(expected), found \(at.value.typeName) \(at.value)")
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let at = take(key) else { return nil }
        guard case .integer(let v) = at.value else { throw wrongType(key, at, expected: "an integer") }
        guard range.contains(v) else {
            throw ConfigurationError(
                source: at.source, line: at.line, key: key,
                message: "\(v) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return v
    }

    mutating func fraction(_ key: String, in range: ClosedRange<Double>, excludingZero: Bool = false)
        throws(ConfigurationError) -> Double?
    {
        guard let at = take(key) else { return nil }
        let v: Double
        switch at.value {
        case .float(let d): v = d
        case .integer(let i): v = Double(i)
        default: throw wrongType(key, at, expected: "a number")
        }
        guard range.contains(v), !(excludingZero && v == 0) else {
            let low = excludingZero ? "above \(range.lowerBound)" : "from \(range.lowerBound)"
            throw ConfigurationError(
                source: at.source, line: at.line, key: key,
                message: "\(v) is out of range (\(low) to \(range.upperBound))")
        }
        return v
    }

    mutating func fraction(_ key: String, in range: Range<Double>) throws(ConfigurationError) -> Double? {
        guard let v = try fraction(key, in: range.lowerBound...range.upperBound) else { return nil }
        guard v < range.upperBound else {
            throw error(key, "\(v) is out of range (from \(range.lowerBound), below \(range.upperBound))")
        }
        return v
    }

    mutating func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let at = take(key) else { return nil }
        guard case .boolean(let v) = at.value else { throw wrongType(key, at, expected: "true or false") }
        return v
    }

    mutating func string(_ key: String, nonEmpty: Bool) throws(ConfigurationError) -> String? {
        guard let at = take(key) else { return nil }
        guard case .string(let v) = at.value else { throw wrongType(key, at, expected: "a string in double quotes") }
        if nonEmpty && v.isEmpty { throw error(key, "must not be empty") }
        return v
    }

    mutating func nbdURI(_ key: String) throws(ConfigurationError) -> String? {
        guard let at = take(key) else { return nil }
        guard case .string(let v) = at.value else {
            throw wrongType(key, at, expected: "an NBD URI in double quotes, like \"nbds://HOST/EXPORT\"")
        }
        if v.isEmpty { return v }
        if let problem = NBDURI.problem(in: v) { throw error(key, problem) }
        return v
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws(ConfigurationError) -> T?
    where T.RawValue == String {
        let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let at = take(key) else { return nil }
        guard case .string(let v) = at.value else { throw wrongType(key, at, expected: "one of \(allowed)") }
        guard let choice = T(rawValue: v) else { throw error(key, "\(QuotedValue(v)) is not one of \(allowed)") }
        return choice
    }

    mutating func size(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let at = take(key) else { return nil }
        let bytes: Int
        switch at.value {
        case .integer(let v) where v >= 0: bytes = v
        case .string(let text):
            guard let v = ByteCount.parse(text) else {
                throw error(
                    key, "\(QuotedValue(text)) is not a size; write a number with a unit, like \"64MiB\" or \"1GiB\"")
            }
            bytes = v
        default: throw wrongType(key, at, expected: "a size like \"1GiB\"")
        }
        guard range.contains(bytes) else {
            throw error(
                key,
                "\(ByteCount.format(bytes)) is out of range (\(ByteCount.format(range.lowerBound)) to \(ByteCount.format(range.upperBound)))"
            )
        }
        return bytes
    }

    mutating func powerOfTwoSize(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let bytes = try size(key, in: range) else { return nil }
        guard bytes & (bytes - 1) == 0 else { throw error(key, "\(ByteCount.format(bytes)) is not a power of two") }
        return bytes
    }

    mutating func churn(_ key: String) throws(ConfigurationError) -> Double? {
        guard let at = take(key) else { return nil }
        guard case .string(let text) = at.value else { throw wrongType(key, at, expected: "a rate like \"2000/s\"") }
        guard let rate = ChurnRate.parse(text) else {
            throw error(
                key,
                "\(QuotedValue(text)) is not an operation rate; write operations per second like \"2000/s\", or \"0/s\""
            )
        }
        return rate
    }

    mutating func rate(_ key: String) throws(ConfigurationError) -> ByteRate? {
        guard let at = take(key) else { return nil }
        guard case .string(let text) = at.value else {
            throw wrongType(key, at, expected: "a rate like \"64MiB/s\" or \"unlimited\"")
        }
        guard let rate = ByteRate.parse(text) else {
            throw error(
                key, "\(QuotedValue(text)) is not a rate; write a size per second like \"64MiB/s\", or \"unlimited\"")
        }
        return rate
    }

    mutating func duration(_ key: String, in range: ClosedRange<UInt64>) throws(ConfigurationError) -> UInt64? {
        guard let at = take(key) else { return nil }
        let nanoseconds: UInt64
        switch at.value {
        case .integer(0): nanoseconds = 0
        case .string(let text):
            guard let v = DurationText.parse(text) else {
                throw error(
                    key,
                    "\(QuotedValue(text)) is not a duration; write a number with a unit, like \"500us\", \"1ms\" or \"60s\", or \"0\""
                )
            }
            nanoseconds = v
        default: throw wrongType(key, at, expected: "a duration like \"1ms\"")
        }
        guard range.contains(nanoseconds) else {
            throw error(
                key,
                "\(DurationText.format(nanoseconds)) is out of range (\(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound)))"
            )
        }
        return nanoseconds
    }

    mutating func rateList(_ key: String) throws(ConfigurationError) -> [ByteRate]? {
        guard let at = take(key) else { return nil }
        guard case .string(let text) = at.value else {
            throw wrongType(key, at, expected: "a list of rates like \"unlimited, 16MiB/s\"")
        }
        if text.trimmingSpaces().isEmpty { return [] }
        var rates: [ByteRate] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let rate = ByteRate.parse(String(item)) else {
                throw error(
                    key,
                    "\(QuotedValue(item.trimmingSpaces())) is not a rate; write each CPU's rate like \"64MiB/s\" or \"unlimited\", separated by commas"
                )
            }
            rates.append(rate)
        }
        return rates
    }

    mutating func list<T: RawRepresentable & CaseIterable>(_ key: String, of _: T.Type) throws(ConfigurationError)
        -> [T]?
    where T.RawValue == String {
        guard let at = take(key) else { return nil }
        let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .string(let text) = at.value else {
            throw wrongType(key, at, expected: "a list of \(allowed) separated by commas")
        }
        if text.trimmingSpaces().isEmpty { return [] }
        var items: [T] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = T(rawValue: item.trimmingSpaces()) else {
                throw error(key, "\(QuotedValue(item.trimmingSpaces())) is not one of \(allowed)")
            }
            items.append(value)
        }
        return items
    }

    /// Throws for the first key (in file order) that no reader asked for.
    func rejectUnread() throws(ConfigurationError) {
        guard let first = unread.min(by: { (fields[$0]!.line, $0) < (fields[$1]!.line, $1) }), let at = fields[first]
        else { return }
        // Unknown sections were refused at their header; this is a key its section does not know.
        let section = first.split(separator: ".").first.map(String.init) ?? ""
        let siblings = ConfigurationKeys.all.filter { $0.section == section }
        throw ConfigurationError(
            source: at.source, line: at.line, key: first,
            message: "unknown key; [\(section)] knows " + siblings.map(\.key).joined(separator: ", "))
    }
}
