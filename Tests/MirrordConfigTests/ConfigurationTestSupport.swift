import MirrordConfig

/// `text` parsed as a configuration file named `test.conf`, with `environment` as overrides.
func parse(_ text: String, environment: [String: String] = [:]) throws(ConfigurationError) -> MirrordConfiguration {
    try ConfigurationLoader.parse(text: text, source: "test.conf", environment: environment)
}

/// The error `text` is rejected with, or nil when it is accepted.
func error(_ text: String, environment: [String: String] = [:]) -> ConfigurationError? {
    do {
        _ = try parse(text, environment: environment)
        return nil
    } catch {
        return error
    }
}
