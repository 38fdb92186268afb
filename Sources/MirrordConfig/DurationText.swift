/// Durations as configuration values write them: `"500us"` (or `"500µs"`), `"1ms"`, `"1.5ms"`,
/// `"60s"`, `"2min"`, `"24h"`, `"100ns"`, or `"0"`.
package enum DurationText {
    private static let units: [(suffix: String, nanoseconds: UInt64)] = [
        ("min", 60_000_000_000), ("h", 3_600_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("µs", 1_000), ("ns", 1),
        ("s", 1_000_000_000),
    ]

    /// Nanoseconds, or nil when the text is not a non-negative number with a known unit (a bare
    /// number is allowed only for 0).
    package static func parse(_ text: String) -> UInt64? {
        let trimmed = text.trimmingSpaces()
        if trimmed == "0" { return 0 }
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingSpaces()
            if let whole = UInt64(number) {
                let (product, overflow) = whole.multipliedReportingOverflow(by: scale)
                return overflow ? nil : product
            }
            guard let fraction = Double(number), fraction >= 0, fraction.isFinite else { return nil }
            let nanoseconds = (fraction * Double(scale)).rounded()
            return nanoseconds < 1.8e19 ? UInt64(nanoseconds) : nil
        }
        return nil
    }

    /// The duration with the largest unit that divides it: `"1ms"`, `"60s"`, `"24h"`, `"0"`.
    package static func format(_ nanoseconds: UInt64) -> String {
        if nanoseconds == 0 { return "0" }
        for (suffix, scale) in [
            ("h", UInt64(3_600_000_000_000)), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000),
        ]
        where nanoseconds % scale == 0 {
            return "\(nanoseconds / scale)\(suffix)"
        }
        return "\(nanoseconds)ns"
    }
}
