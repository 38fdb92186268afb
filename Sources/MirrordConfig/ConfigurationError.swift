/// A configuration that cannot be used, with where it went wrong: the file and line (or the
/// environment variable), the key, and what is wrong with it.
///
/// Its description has the form `PATH:LINE: key: message`, which editors and CI logs link to.
package struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where the bad value came from: a file path, or `environment` for overrides.
    package var source: String
    /// The line in the file (0 when the source is not a file or the whole file is at fault).
    package var line: Int
    /// The key, as `section.key`, when the error concerns one.
    package var key: String?
    /// What is wrong, and what would be right.
    package var message: String

    /// Creates an error.
    package init(source: String, line: Int, key: String?, message: String) {
        self.source = source
        self.line = line
        self.key = key
        self.message = message
    }

    /// The value or error as one line of text.
    package var description: String {
        let place = line > 0 ? "\(source):\(line)" : source
        if let key { return "\(place): \(key): \(message)" }
        return "\(place): \(message)"
    }
}
