/// A value as an error message shows it: in double quotes, control characters escaped (a `\r` or
/// a terminal escape is visible and harmless on a terminal or in the journal), and at most
/// ``maximumCharacters`` characters with the full length said, so that a 1 MB value does not
/// become a 1 MB message.
struct QuotedValue: CustomStringConvertible {
    /// The most characters shown.
    static let maximumCharacters = 64

    let text: Substring

    init(_ text: some StringProtocol) { self.text = Substring(text) }

    var description: String {
        var shown = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == Self.maximumCharacters {
                return shown + "…\" (\(text.utf8.count) bytes)"
            }
            count += 1
            switch scalar {
            case "\"": shown += "\\\""
            case "\\": shown += "\\\\"
            case "\t": shown += "\\t"
            case "\n": shown += "\\n"
            case "\r": shown += "\\r"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
                    shown += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    shown.unicodeScalars.append(scalar)
                }
            }
        }
        return shown + "\""
    }

    /// The first control character of `text` other than a tab, as `U+001B`, or nil: text that a
    /// configuration may not hold.
    static func firstControlCharacter(in text: some StringProtocol) -> String? {
        guard
            let scalar = text.unicodeScalars.first(where: {
                $0 != "\t" && $0.properties.generalCategory == .control
            })
        else { return nil }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
