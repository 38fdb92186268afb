/// A size in bytes written with a unit, as configuration values take them: `"64B"`, `"4KiB"`,
/// `"1GiB"`, `"2GB"`. Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones powers of
/// 1000; a bare number is bytes.
public enum ByteCount {
    private static let units: [(String, Int)] = [
        ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("kB", 1_000),
        ("B", 1),
    ]

    /// Parses a size; returns nil when the text is not a whole number of bytes with a known unit.
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces()
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingSpaces()
            return scaled(number, by: scale)
        }
        return scaled(trimmed, by: 1)
    }

    /// Formats a size with the largest binary unit that divides it, for messages and summaries.
    public static func format(_ bytes: Int) -> String {
        for (suffix, scale) in units where suffix.hasSuffix("iB") && bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)B"
    }

    private static func scaled(_ number: String, by scale: Int) -> Int? {
        if let whole = Int(number.filter { $0 != "_" }), whole >= 0 {
            let (product, overflow) = whole.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }
        // A fraction is fine as long as it lands on a whole byte: "1.5GiB".
        if scale > 1, let fraction = Double(number), fraction >= 0, fraction.isFinite {
            let bytes = fraction * Double(scale)
            if bytes <= Double(Int.max), bytes == bytes.rounded() { return Int(bytes) }
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
