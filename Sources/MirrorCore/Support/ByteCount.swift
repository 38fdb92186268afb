/// Sizes in bytes as people read them: `"64B"`, `"4KiB"`, `"1GiB"`. Binary units (KiB, MiB, GiB,
/// TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000.
public enum ByteCount {
    /// Every unit, largest first within each family.
    package static let units: [(suffix: String, scale: Int)] = [
        ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("kB", 1_000),
        ("B", 1),
    ]

    /// Formats a size with the largest binary unit that divides it, for messages and summaries.
    public static func format(_ bytes: Int) -> String {
        for (suffix, scale) in units where suffix.hasSuffix("iB") && bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return "\(bytes)B"
    }
}
