import MirrorCore

/// One key of `mirrord.conf`: its name, the type and range of its values, whether a running
/// daemon can apply it on reload, and where its value goes in a ``MirrordConfiguration``.
///
/// The loader reads every key through its entry in ``ConfigurationKeys/all``; the reload diff,
/// `value(forKey:)` and the test that `config/mirrord.conf` writes every default read the same
/// entries, so a key exists in one place.
package struct ConfigurationKey: Sendable {
    /// The full name, `section.key`.
    package let name: String
    /// What values it takes, for documentation: `"an integer from 1 to 100000"`.
    package let type: String
    /// Whether a reload applies it to a running daemon (the `[duplex]` keys do; the rest shape the
    /// machine and wait for a restart).
    package let reloadable: Bool
    /// Reads the key (if set) into the configuration.
    let read: @Sendable (inout FieldReader, inout MirrordConfiguration) throws(ConfigurationError) -> Void
    /// The key's value in a configuration, as the file writes it.
    let render: @Sendable (MirrordConfiguration) -> String
    /// Copies the key's value from one configuration to another (for a reload).
    let copy: @Sendable (MirrordConfiguration, inout MirrordConfiguration) -> Void

    /// The section, `duplex` of `duplex.threshold_frames`.
    package var section: String { String(name.prefix { $0 != "." }) }
    /// The key within its section, `threshold_frames` of `duplex.threshold_frames`.
    package var key: String { String(name.drop { $0 != "." }.dropFirst()) }

    /// The value of this key in `configuration`, as the file writes it.
    package func value(in configuration: MirrordConfiguration) -> String { render(configuration) }

    /// The built-in default, as the file writes it.
    package var defaultValue: String { render(MirrordConfiguration()) }

    private init<Value>(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Value> & Sendable, type: String, reloadable: Bool,
        render: @escaping @Sendable (Value) -> String,
        read: @escaping @Sendable (inout FieldReader, MirrordConfiguration) throws(ConfigurationError) -> Value?
    ) {
        self.name = name
        self.type = type
        self.reloadable = reloadable
        self.read = { (reader: inout FieldReader, config: inout MirrordConfiguration) throws(ConfigurationError) in
            if let value = try read(&reader, config) { config[keyPath: path] = value }
        }
        self.render = { render($0[keyPath: path]) }
        self.copy = { from, to in to[keyPath: path] = from[keyPath: path] }
    }

    /// Every key is reloadable exactly when it is in `[duplex]`.
    private static func isReloadable(_ name: String) -> Bool { name.hasPrefix("duplex.") }

    // MARK: - Kinds of keys

    /// An integer within `range` (which may depend on keys read before it).
    static func integer(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Int> & Sendable, type: String,
        in range: @escaping @Sendable (MirrordConfiguration) -> ClosedRange<Int>
    ) -> ConfigurationKey {
        ConfigurationKey(name, path, type: type, reloadable: isReloadable(name), render: { "\($0)" }) {
            (reader: inout FieldReader, config: MirrordConfiguration) throws(ConfigurationError) in
            try reader.integer(name, in: range(config))
        }
    }

    /// A non-negative integer kept as a `UInt64` (a seed).
    static func seed(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, UInt64> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name, path, type: "a non-negative integer", reloadable: isReloadable(name), render: { "\($0)" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.integer(name, in: 0...Int.max).map { UInt64($0) }
        }
    }

    /// A number within `range`, optionally excluding 0.
    static func fraction(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Double> & Sendable, in range: ClosedRange<Double>,
        excludingZero: Bool = false
    ) -> ConfigurationKey {
        let low = excludingZero ? "above \(range.lowerBound)" : "from \(range.lowerBound)"
        return ConfigurationKey(
            name, path, type: "a number \(low) to \(range.upperBound)", reloadable: isReloadable(name),
            render: { "\($0)" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.fraction(name, in: range, excludingZero: excludingZero)
        }
    }

    /// A number from `range.lowerBound` up to, not including, `range.upperBound`.
    static func fraction(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Double> & Sendable, below range: Range<Double>
    ) -> ConfigurationKey {
        ConfigurationKey(
            name, path, type: "a number from \(range.lowerBound), below \(range.upperBound)",
            reloadable: isReloadable(name), render: { "\($0)" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.fraction(name, in: range)
        }
    }

    /// `true` or `false`.
    static func boolean(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, Bool> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(name, path, type: "true or false", reloadable: isReloadable(name), render: { "\($0)" }) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.boolean(name)
        }
    }

    /// A string in double quotes.
    static func string(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, String> & Sendable, nonEmpty: Bool
    ) -> ConfigurationKey {
        ConfigurationKey(
            name, path, type: nonEmpty ? "a non-empty string" : "a string", reloadable: isReloadable(name),
            render: { "\"\($0)\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.string(name, nonEmpty: nonEmpty)
        }
    }

    /// One of the raw values of `T`.
    static func choice<T: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, T> & Sendable
    ) -> ConfigurationKey where T.RawValue == String {
        let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        return ConfigurationKey(
            name, path, type: "one of \(allowed)", reloadable: isReloadable(name),
            render: { "\"\($0.rawValue)\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.choice(name, T.self)
        }
    }

    /// A size with a unit within `range`; with `powerOfTwo`, a power of two.
    static func size(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Int> & Sendable, type: String,
        powerOfTwo: Bool = false,
        in range: @escaping @Sendable (MirrordConfiguration) -> ClosedRange<Int>
    ) -> ConfigurationKey {
        ConfigurationKey(
            name, path, type: type, reloadable: isReloadable(name), render: { "\"\(ByteCount.format($0))\"" }
        ) {
            (reader: inout FieldReader, config: MirrordConfiguration) throws(ConfigurationError) in
            powerOfTwo ? try reader.powerOfTwoSize(name, in: range(config)) : try reader.size(name, in: range(config))
        }
    }

    /// A byte rate (`"64MiB/s"`) or `"unlimited"`.
    static func rate(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, ByteRate> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name, path, type: "a size per second like \"64MiB/s\", or \"unlimited\"", reloadable: isReloadable(name),
            render: { "\"\($0)\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.rate(name)
        }
    }

    /// A duration with a unit (`"1ms"`), or `"0"`, within `range` nanoseconds.
    static func duration(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, UInt64> & Sendable, in range: ClosedRange<UInt64>
    ) -> ConfigurationKey {
        let type =
            range.lowerBound == 0
            ? "a duration like \"500us\", \"1ms\" or \"60s\" (\"0\": off), at most \(DurationText.format(range.upperBound))"
            : "a duration like \"500us\", \"1ms\" or \"60s\", from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound))"
        return ConfigurationKey(
            name, path, type: type, reloadable: isReloadable(name), render: { "\"\(DurationText.format($0))\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.duration(name, in: range)
        }
    }

    /// An NBD URI that libnbd's `nbd_connect_uri` reads (``NBDURI``), or `""` for none.
    static func nbdURI(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, String> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name, path,
            type:
                "an NBD URI (nbd://HOST[:PORT]/EXPORT, nbds://…, nbd+unix:///EXPORT?socket=PATH, nbds+unix://…, nbd+vsock://CID[:PORT]/EXPORT, nbds+vsock://…), or \"\" for none",
            reloadable: isReloadable(name), render: { "\"\($0)\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.nbdURI(name)
        }
    }

    /// A whole percentage within `range`, kept as a fraction.
    static func percent(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, Double> & Sendable, in range: ClosedRange<Int>
    ) -> ConfigurationKey {
        ConfigurationKey(
            name, path, type: "a percentage from \(range.lowerBound) to \(range.upperBound)",
            reloadable: isReloadable(name), render: { "\(Int(($0 * 100).rounded()))" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.integer(name, in: range).map { Double($0) / 100 }
        }
    }

    /// One rate a CPU, separated by commas (`"unlimited, 16MiB/s"`), or `""` for none.
    static func rateList(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, [ByteRate]> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name, path, type: "a rate per CPU separated by commas, like \"unlimited, 16MiB/s\", or \"\"",
            reloadable: isReloadable(name), render: { "\"\($0.map(\.description).joined(separator: ", "))\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.rateList(name)
        }
    }

    /// One pattern a CPU, separated by commas (`"uniform, hotset"`), or `""` for none.
    static func patternList(
        _ name: String, _ path: WritableKeyPath<MirrordConfiguration, [MachineOptions.Pattern]> & Sendable
    ) -> ConfigurationKey {
        let allowed = MachineOptions.Pattern.allCases.map(\.rawValue).joined(separator: ", ")
        return ConfigurationKey(
            name, path, type: "a pattern per CPU (\(allowed)) separated by commas, or \"\"",
            reloadable: isReloadable(name), render: { "\"\($0.map(\.rawValue).joined(separator: ", "))\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.list(name, of: MachineOptions.Pattern.self)
        }
    }

    /// An operation rate, `"2000/s"`.
    static func churn(_ name: String, _ path: WritableKeyPath<MirrordConfiguration, Double> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name, path, type: "operations per second like \"2000/s\" (at most 1000000/s)",
            reloadable: isReloadable(name), render: { "\"\(ChurnRate.format($0))\"" }
        ) {
            (reader: inout FieldReader, _: MirrordConfiguration) throws(ConfigurationError) in
            try reader.churn(name)
        }
    }
}
