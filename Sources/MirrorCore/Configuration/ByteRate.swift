/// A write rate in bytes a second, or no limit: `"200MiB/s"`, `"unlimited"`.
public enum ByteRate: Sendable, Hashable, CustomStringConvertible {
    /// At most this many bytes a second.
    case limited(bytesPerSecond: Int)
    /// As fast as the thread runs.
    case unlimited

    /// Parses a rate; returns nil when the text is neither `unlimited` nor a size followed by `/s`.
    public static func parse(_ text: String) -> ByteRate? {
        let trimmed = text.trimmingSpaces()
        if trimmed == "unlimited" { return .unlimited }
        guard trimmed.hasSuffix("/s"), let bytes = ByteCount.parse(String(trimmed.dropLast(2))) else { return nil }
        return .limited(bytesPerSecond: bytes)
    }

    /// Bytes a second, or nil when unlimited.
    public var bytesPerSecond: Int? {
        if case .limited(let rate) = self { return rate }
        return nil
    }

    /// The value or error as one line of text.
    public var description: String {
        switch self {
        case .unlimited: "unlimited"
        case .limited(let rate): "\(ByteCount.format(rate))/s"
        }
    }
}
