import MirrorCore

extension ByteCount {
    /// Parses a size written with a unit, as configuration values take them: `"64B"`, `"4KiB"`,
    /// `"1GiB"`, `"2GB"`, `"1.5GiB"` (a fraction must land on a whole byte); a bare number is
    /// bytes. Returns nil when the text is not a whole number of bytes with a known unit.
    package static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces()
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingSpaces()
            return scaled(number, by: scale)
        }
        return scaled(trimmed, by: 1)
    }

    private static func scaled(_ number: String, by scale: Int) -> Int? {
        if let whole = Int(number.filter { $0 != "_" }), whole >= 0 {
            let (product, overflow) = whole.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }
        if scale > 1, let fraction = Double(number), fraction >= 0, fraction.isFinite {
            let bytes = fraction * Double(scale)
            if bytes <= Double(Int.max), bytes == bytes.rounded() { return Int(bytes) }
        }
        return nil
    }
}

extension ByteRate {
    /// Parses a rate; returns nil when the text is neither `unlimited` nor a size followed by `/s`.
    package static func parse(_ text: String) -> ByteRate? {
        let trimmed = text.trimmingSpaces()
        if trimmed == "unlimited" { return .unlimited }
        guard trimmed.hasSuffix("/s"), let bytes = ByteCount.parse(String(trimmed.dropLast(2))) else { return nil }
        return .limited(bytesPerSecond: bytes)
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
