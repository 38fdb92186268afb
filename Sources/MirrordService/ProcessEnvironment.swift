#if canImport(Glibc)
import Glibc
#endif

/// The process environment as a dictionary, read once at start.
package enum ProcessEnvironment {
    /// Every `NAME=value` pair of the environment.
    package static var current: [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }
}
