/// A parsed configuration file: `[section]` headers and `key = value` lines, a subset of TOML.
///
/// Values are TOML scalars: basic strings in double quotes (with `\"`, `\\`, `\t`, `\n` escapes),
/// integers (with optional `_` separators), floats and booleans. `#` starts a comment outside a
/// string. Every entry keeps its line, so that later checks can point at it.
package struct ConfigurationFile: Sendable {
    /// One `key = value` line.
    package struct Entry: Sendable, Hashable {
        /// The section it is in, for example `duplex`.
        package var section: String
        /// The key within the section, for example `threshold_frames`.
        package var key: String
        /// The value as written.
        package var value: ConfigValue
        /// The line it is on, from 1.
        package var line: Int

        /// The full name, `section.key`, used in messages and documentation.
        package var name: String { "\(section).\(key)" }
    }

    /// One `[section]` header.
    package struct Section: Sendable, Hashable {
        /// The section's name, for example `duplex`.
        package var name: String
        /// The line of its header, from 1.
        package var line: Int
    }

    /// Where the text came from, as errors name it.
    package let source: String
    /// The entries in file order.
    package let entries: [Entry]
    /// The section headers in file order, with or without keys under them.
    package let sections: [Section]

    /// Parses `text`; `source` names it in errors (usually the file's path).
    package init(text: String, source: String) throws(ConfigurationError) {
        self.source = source
        var entries: [Entry] = []
        var sections: [Section] = []
        var section: String?
        var seenKeys: [String: Int] = [:]
        var lineNumber = 0
        // "\r\n" is one Character in Swift: a CRLF file's lines end at either separator.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            func fail(_ message: String, key: String? = nil) -> ConfigurationError {
                ConfigurationError(source: source, line: lineNumber, key: key, message: message)
            }
            var scanner = LineScanner(Substring(rawLine))
            if let control = QuotedValue.firstControlCharacter(in: scanner.text) {
                throw fail("control character \(control); a configuration file is plain text (tabs allowed)")
            }
            scanner.skipSpaces()
            if scanner.atEndOrComment { continue }
            if scanner.consume("[") {
                scanner.skipSpaces()
                guard let name = scanner.bareKey() else { throw fail("expected a section name after '['") }
                scanner.skipSpaces()
                guard scanner.consume("]") else { throw fail("expected ']' after section name '\(name)'") }
                scanner.skipSpaces()
                guard scanner.atEndOrComment else { throw fail("unexpected text after section header [\(name)]") }
                if let first = sections.first(where: { $0.name == name }) {
                    throw fail("section [\(name)] appears twice (first on line \(first.line))")
                }
                sections.append(Section(name: name, line: lineNumber))
                section = name
                continue
            }
            guard let key = scanner.bareKey() else {
                throw fail("expected 'key = value' or '[section]', found \(QuotedValue(rawLine.trimmingSpaces()))")
            }
            guard let section else { throw fail("key outside a section; put it under a [section] header", key: key) }
            let name = "\(section).\(key)"
            scanner.skipSpaces()
            guard scanner.consume("=") else { throw fail("expected '=' after the key", key: name) }
            scanner.skipSpaces()
            let value: ConfigValue
            do {
                value = try scanner.value()
            } catch {
                throw fail(error.message, key: name)
            }
            scanner.skipSpaces()
            guard scanner.atEndOrComment else { throw fail("unexpected text after the value", key: name) }
            if let first = seenKeys[name] { throw fail("set twice (first on line \(first))", key: name) }
            seenKeys[name] = lineNumber
            entries.append(Entry(section: section, key: key, value: value, line: lineNumber))
        }
        self.entries = entries
        self.sections = sections
    }
}

/// Why a value could not be read.
private struct ValueSyntaxError: Error {
    var message: String
}

/// A cursor over one line of the file.
private struct LineScanner {
    private var rest: Substring

    /// What is left of the line.
    var text: Substring { rest }

    init(_ line: Substring) {
        rest = line
        if rest.last == "\r" { rest.removeLast() }
    }

    var atEndOrComment: Bool { rest.isEmpty || rest.first == "#" }

    mutating func skipSpaces() {
        while let c = rest.first, c == " " || c == "\t" { rest.removeFirst() }
    }

    mutating func consume(_ token: Character) -> Bool {
        guard rest.first == token else { return false }
        rest.removeFirst()
        return true
    }

    /// A TOML bare key: letters, digits, `_` and `-`.
    mutating func bareKey() -> String? {
        let key = rest.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
        guard !key.isEmpty else { return nil }
        rest.removeFirst(key.count)
        return String(key)
    }

    mutating func value() throws(ValueSyntaxError) -> ConfigValue {
        guard let first = rest.first else { throw ValueSyntaxError(message: "missing value after '='") }
        if first == "\"" { return .string(try quoted()) }
        if first == "'" {
            rest.removeFirst()
            guard let end = rest.firstIndex(of: "'") else { throw ValueSyntaxError(message: "unterminated string") }
            let text = String(rest[..<end])
            rest = rest[rest.index(after: end)...]
            return .string(text)
        }
        let token = rest.prefix { $0 != " " && $0 != "\t" && $0 != "#" }
        rest.removeFirst(token.count)
        switch token {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        default: break
        }
        let digits = token.replacingUnderscores()
        if let integer = Int(digits) { return .integer(integer) }
        if token.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let float = Double(digits), float.isFinite {
            return .float(float)
        }
        throw ValueSyntaxError(
            message:
                "\(QuotedValue(token)) is not a value; strings need double quotes, numbers are digits, booleans true or false"
        )
    }

    private mutating func quoted() throws(ValueSyntaxError) -> String {
        rest.removeFirst()
        var text = ""
        while let c = rest.first {
            rest.removeFirst()
            switch c {
            case "\"":
                return text
            case "\\":
                guard let e = rest.first else { break }
                rest.removeFirst()
                switch e {
                case "\"": text.append("\"")
                case "\\": text.append("\\")
                case "n": text.append("\n")
                case "t": text.append("\t")
                default: throw ValueSyntaxError(message: "unknown escape '\\\(e)' in string")
                }
            default:
                text.append(c)
            }
        }
        throw ValueSyntaxError(message: "unterminated string (missing closing '\"')")
    }
}

extension Substring {
    fileprivate func replacingUnderscores() -> String {
        // TOML allows 1_000_000; an underscore must sit between digits.
        String(filter { $0 != "_" })
    }
}
