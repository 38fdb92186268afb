/// A rate of page-table operations, written `"2000/s"`: a plain number of operations per second.
package enum ChurnRate {
    /// Parses `"N/s"` (N a non-negative number, at most 10⁶); nil for anything else.
    package static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingSpaces()
        guard trimmed.hasSuffix("/s"), let rate = Double(trimmed.dropLast(2).filter { $0 != "_" }),
            rate.isFinite, rate >= 0, rate <= 1_000_000
        else { return nil }
        return rate
    }

    /// Formats a rate as the configuration file writes it.
    package static func format(_ rate: Double) -> String {
        rate == rate.rounded() ? "\(Int(rate))/s" : "\(rate)/s"
    }
}
