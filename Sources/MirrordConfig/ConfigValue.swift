/// One value of the configuration file, as written: the TOML scalar types mirrord accepts.
package enum ConfigValue: Sendable, Hashable, CustomStringConvertible {
    /// A quoted string, for example `"1GiB"`.
    case string(String)
    /// A whole number, for example `1024`.
    case integer(Int)
    /// A number with a fraction, for example `0.05`.
    case float(Double)
    /// `true` or `false`.
    case boolean(Bool)

    /// The type's name as an error message says it.
    package var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .boolean: "a boolean"
        }
    }

    /// The value as a message shows it: a string quoted, escaped and shortened (``QuotedValue``).
    package var description: String {
        switch self {
        case .string(let s): QuotedValue(s).description
        case .integer(let i): String(i)
        case .float(let d): String(d)
        case .boolean(let b): String(b)
        }
    }
}
