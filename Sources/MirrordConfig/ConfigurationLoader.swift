import MirrorCore

/// Turns a configuration file and `MIRRORD_*` environment overrides into a checked
/// ``MirrordConfiguration``, strictly: unknown sections and keys, wrong types and out-of-range
/// values are errors that name the file, the line and the key. Nothing falls back silently.
///
/// An override is named `MIRRORD_<SECTION>_<KEY>` in upper case, for example
/// `MIRRORD_DUPLEX_THRESHOLD_FRAMES=512`; its value is read like a value in the file, and a bare
/// word is taken as a string (`MIRRORD_MEMORY_SIZE=2GiB`). Overrides win over the file.
package enum ConfigurationLoader {
    /// The largest configuration file read (1 MiB): a real one is a few kilobytes, and a bound
    /// keeps a mistaken path (a log, a disk image) from being read whole.
    package static let maximumFileSize = 1 << 20

    /// The prefix of environment overrides.
    package static let environmentPrefix = "MIRRORD_"

    /// Every key mirrord knows, as `section.key`, in the order of `config/mirrord.conf`.
    package static var knownKeys: [String] { ConfigurationKeys.all.map(\.name) }

    /// Loads the file at `path` (or the built-in defaults when `path` is nil) with the overrides
    /// found in `environment`.
    package static func load(path: String?, environment: [String: String] = [:]) throws(ConfigurationError)
        -> MirrordConfiguration
    {
        guard let path else { return try parse(text: "", source: "(built-in defaults)", environment: environment) }
        let text: String
        do {
            text = try RegularFile.readText(path, limit: maximumFileSize, what: "a configuration file")
        } catch {
            throw ConfigurationError(source: path, line: 0, key: nil, message: "cannot read the file: \(error)")
        }
        return try parse(text: text, source: path, environment: environment)
    }

    /// Parses configuration text; `source` names it in errors.
    package static func parse(text: String, source: String, environment: [String: String] = [:])
        throws(ConfigurationError)
        -> MirrordConfiguration
    {
        let file = try ConfigurationFile(text: text, source: source)
        let known = Set(ConfigurationKeys.sections)
        if let unknown = file.sections.first(where: { !known.contains($0.name) }) {
            // At the header, with or without keys under it: a typo'd header at the end of a file
            // would otherwise pass unseen.
            throw ConfigurationError(
                source: source, line: unknown.line, key: nil,
                message: "unknown section [\(unknown.name)]; known sections: "
                    + ConfigurationKeys.sections.joined(separator: ", "))
        }
        var reader = try FieldReader(file: file, environment: environment)
        var config = MirrordConfiguration()
        for key in ConfigurationKeys.all {
            try key.read(&reader, &config)
            for rule in ConfigurationKeys.rules where rule.after == key.name {
                try rule.check(&reader, &config)
            }
        }
        try reader.rejectUnread()
        return config
    }
}
