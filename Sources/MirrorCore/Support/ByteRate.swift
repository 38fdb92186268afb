/// A write rate in bytes a second, or no limit: `"200MiB/s"`, `"unlimited"`.
public enum ByteRate: Sendable, Hashable, CustomStringConvertible {
    /// At most this many bytes a second.
    case limited(bytesPerSecond: Int)
    /// As fast as the thread runs.
    case unlimited

    /// Bytes a second, or nil when unlimited.
    public var bytesPerSecond: Int? {
        if case .limited(let rate) = self { return rate }
        return nil
    }

    /// The rate as the configuration file writes it.
    public var description: String {
        switch self {
        case .unlimited: "unlimited"
        case .limited(let rate): "\(ByteCount.format(rate))/s"
        }
    }
}
