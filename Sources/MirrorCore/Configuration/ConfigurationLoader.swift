/// Turns a configuration file and `MIRRORD_*` environment overrides into a checked
/// ``MirrordConfiguration``, strictly: unknown sections and keys, wrong types and out-of-range
/// values are errors that name the file, the line and the key. Nothing falls back silently.
///
/// An override is named `MIRRORD_<SECTION>_<KEY>` in upper case, for example
/// `MIRRORD_DUPLEX_THRESHOLD_FRAMES=512`; its value is read like a value in the file, and a bare
/// word is taken as a string (`MIRRORD_MEMORY_SIZE=2GiB`). Overrides win over the file.
public enum ConfigurationLoader {
    /// The prefix of environment overrides.
    public static let environmentPrefix = "MIRRORD_"

    /// Every key mirrord knows, as `section.key`, in the order of `config/mirrord.conf`.
    public static let knownKeys: [String] = [
        "hardware.backend",
        "memory.size", "memory.backing", "memory.state_dir",
        "duplex.threshold_frames", "duplex.max_passes", "duplex.min_progress", "duplex.verify_in_blackout",
        "workload.pattern", "workload.cpus", "workload.rate", "workload.seed", "workload.hot_fraction",
        "workload.hot_share", "workload.store_size", "workload.trace", "workload.churn",
        "mmu.enabled", "mmu.huge_share",
        "tracking.departing_hook",
        "dma.rate", "dma.block_size", "dma.dual_write",
        "fault.flip_spare_bit", "fault.hang_after_pass",
    ]

    /// Loads the file at `path` (or the built-in defaults when `path` is nil) with the overrides
    /// found in `environment`.
    public static func load(path: String?, environment: [String: String] = [:]) throws(ConfigurationError)
        -> MirrordConfiguration
    {
        guard let path else { return try parse(text: "", source: "(built-in defaults)", environment: environment) }
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw ConfigurationError(source: path, line: 0, key: nil, message: "cannot read the file: \(error)")
        }
        return try parse(text: text, source: path, environment: environment)
    }

    /// Parses configuration text; `source` names it in errors.
    public static func parse(text: String, source: String, environment: [String: String] = [:]) throws(ConfigurationError)
        -> MirrordConfiguration
    {
        let file = try ConfigurationFile(text: text, source: source)
        var reader = try FieldReader(file: file, environment: environment)
        var config = MirrordConfiguration()

        if let v = try reader.choice("hardware.backend", MirrordConfiguration.Hardware.Backend.self) {
            config.hardware.backend = v
        }

        if let v = try reader.size("memory.size", in: 64 << 10...(1 << 40)) { config.memory.size = v }
        if let v = try reader.choice("memory.backing", MirrordConfiguration.Memory.Backing.self) { config.memory.backing = v }
        if let v = try reader.string("memory.state_dir", nonEmpty: true) { config.memory.stateDirectory = v }
        if config.memory.size % config.memory.frameSize != 0 {
            throw reader.error("memory.size", "\(config.memory.size) bytes is not a whole number of 4KiB frames")
        }
        let frames = config.memory.size / config.memory.frameSize

        if let v = try reader.integer("duplex.threshold_frames", in: 0...frames) { config.duplex.thresholdFrames = v }
        if let v = try reader.integer("duplex.max_passes", in: 1...100_000) { config.duplex.maxPasses = v }
        if let v = try reader.fraction("duplex.min_progress", in: 0..<1) { config.duplex.minProgress = v }
        if let v = try reader.boolean("duplex.verify_in_blackout") { config.duplex.verifyInBlackout = v }

        if let v = try reader.choice("workload.pattern", MirrordConfiguration.Workload.Pattern.self) {
            config.workload.pattern = v
        }
        if let v = try reader.integer("workload.cpus", in: 0...256) { config.workload.cpus = v }
        if let v = try reader.rate("workload.rate") { config.workload.rate = v }
        if let v = try reader.integer("workload.seed", in: 0...Int.max) { config.workload.seed = UInt64(v) }
        if let v = try reader.fraction("workload.hot_fraction", in: 0...1, excludingZero: true) {
            config.workload.hotFraction = v
        }
        if let v = try reader.fraction("workload.hot_share", in: 0...1) { config.workload.hotShare = v }
        if let v = try reader.powerOfTwoSize("workload.store_size", in: 8...config.memory.frameSize) {
            config.workload.storeSize = v
        }
        if let v = try reader.string("workload.trace", nonEmpty: false) { config.workload.trace = v }
        if config.workload.pattern == .trace {
            if config.workload.trace.isEmpty {
                throw reader.error("workload.trace", "pattern \"trace\" needs workload.trace = PATH of a lackey log",
                                   orKey: "workload.pattern")
            }
            if !isReadableFile(config.workload.trace) {
                throw reader.error("workload.trace", "cannot read the trace file \"\(config.workload.trace)\"")
            }
        }

        if let v = try reader.churn("workload.churn") { config.workload.churn = v }

        let mmuSet = try reader.boolean("mmu.enabled")
        if let v = mmuSet { config.mmu.enabled = v }
        if let v = try reader.fraction("mmu.huge_share", in: 0...1) { config.mmu.hugeShare = v }
        if config.hardware.backend.usesRealMMU {
            // The real MMU tracks writes: the emulated MMU and its churn do not apply. Their
            // defaults step aside; an explicit request for them is an error.
            if mmuSet == true {
                throw reader.error("mmu.enabled", "the emulated MMU does not apply to hardware.backend = \"\(config.hardware.backend.rawValue)\"; remove it or set false")
            }
            if reader.isSet("workload.churn") && config.workload.churn > 0 {
                throw reader.error("workload.churn", "page-table churn needs the emulated MMU, which backend \"\(config.hardware.backend.rawValue)\" does not use; set \"0/s\"")
            }
            if config.memory.backing == .file {
                throw reader.error("memory.backing", "backend \"\(config.hardware.backend.rawValue)\" needs anonymous memory (it tracks writes through a second mapping of shared memory)",
                                   orKey: "hardware.backend")
            }
            config.mmu.enabled = false
            config.workload.churn = 0
        }
        if config.workload.churn > 0 && !config.mmu.enabled {
            throw reader.error("workload.churn", "page-table churn needs the MMU (mmu.enabled = true, or churn = \"0/s\")",
                               orKey: "mmu.enabled")
        }

        if let v = try reader.boolean("tracking.departing_hook") { config.tracking.departingHook = v }

        if let v = try reader.rate("dma.rate") { config.dma.rate = v }
        if let v = try reader.powerOfTwoSize("dma.block_size", in: config.memory.frameSize...(2 << 20)) {
            config.dma.blockSize = v
        }
        if config.dma.blockSize > config.memory.size {
            throw reader.error("dma.block_size", "\(ByteCount.format(config.dma.blockSize)) is larger than memory.size")
        }
        if let v = try reader.boolean("dma.dual_write") { config.dma.dualWrite = v }

        if let v = try reader.boolean("fault.flip_spare_bit") { config.fault.flipSpareBit = v }
        if let v = try reader.integer("fault.hang_after_pass", in: 0...100_000) { config.fault.hangAfterPass = v }

        try reader.rejectUnread()
        return config
    }
}

/// Reads typed values out of the file and the overrides, remembering what was read, so that what
/// is left over can be rejected as unknown.
private struct FieldReader {
    struct Located {
        var value: ConfigValue
        var source: String
        var line: Int
    }

    private var fields: [String: Located] = [:]
    private var unread: Set<String> = []

    init(file: ConfigurationFile, environment: [String: String]) throws(ConfigurationError) {
        for entry in file.entries {
            fields[entry.name] = Located(value: entry.value, source: file.source, line: entry.line)
        }
        for (variable, text) in environment where variable.hasPrefix(ConfigurationLoader.environmentPrefix) {
            let name = String(variable.dropFirst(ConfigurationLoader.environmentPrefix.count)).lowercased()
            guard let split = name.firstIndex(of: "_") else {
                throw ConfigurationError(source: "environment \(variable)", line: 0, key: nil,
                                         message: "not a configuration override (expected MIRRORD_SECTION_KEY)")
            }
            let key = "\(name[..<split]).\(name[name.index(after: split)...])"
            guard ConfigurationLoader.knownKeys.contains(key) else {
                throw ConfigurationError(source: "environment \(variable)", line: 0, key: key,
                                         message: "unknown key; overrides are named after the keys of mirrord.conf")
            }
            let value: ConfigValue
            if let parsed = try? ConfigurationFile(text: "[e]\nv = \(text)", source: variable).entries.first?.value {
                value = parsed
            } else {
                value = .string(text)
            }
            fields[key] = Located(value: value, source: "environment \(variable)", line: 0)
        }
        unread = Set(fields.keys)
    }

    func error(_ key: String, _ message: String, orKey fallback: String? = nil) -> ConfigurationError {
        if let at = fields[key] ?? fallback.flatMap({ fields[$0] }) {
            return ConfigurationError(source: at.source, line: at.line, key: key, message: message)
        }
        return ConfigurationError(source: "(built-in defaults)", line: 0, key: key, message: message)
    }

    /// Whether the file or the environment sets `key`.
    func isSet(_ key: String) -> Bool { fields[key] != nil }

    private mutating func take(_ key: String) -> Located? {
        precondition(ConfigurationLoader.knownKeys.contains(key), "\(key) missing from knownKeys")
        unread.remove(key)
        return fields[key]
    }

    private func wrongType(_ key: String, _ at: Located, expected: String) -> ConfigurationError {
        ConfigurationError(source: at.source, line: at.line, key: key,
                           message: "expected \(expected), found \(at.value.typeName) \(at.value)")
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let at = take(key) else { return nil }
        guard case .integer(let v) = at.value else { throw wrongType(key, at, expected: "an integer") }
        guard range.contains(v) else {
            throw ConfigurationError(source: at.source, line: at.line, key: key,
                                     message: "\(v) is out of range (\(range.lowerBound)...\(range.upperBound))")
        }
        return v
    }

    mutating func fraction(_ key: String, in range: ClosedRange<Double>, excludingZero: Bool = false)
        throws(ConfigurationError) -> Double?
    {
        guard let at = take(key) else { return nil }
        let v: Double
        switch at.value {
        case .float(let d): v = d
        case .integer(let i): v = Double(i)
        default: throw wrongType(key, at, expected: "a number")
        }
        guard range.contains(v), !(excludingZero && v == 0) else {
            let low = excludingZero ? "above \(range.lowerBound)" : "from \(range.lowerBound)"
            throw ConfigurationError(source: at.source, line: at.line, key: key,
                                     message: "\(v) is out of range (\(low) to \(range.upperBound))")
        }
        return v
    }

    mutating func fraction(_ key: String, in range: Range<Double>) throws(ConfigurationError) -> Double? {
        guard let v = try fraction(key, in: range.lowerBound...range.upperBound) else { return nil }
        guard v < range.upperBound else {
            throw error(key, "\(v) is out of range (from \(range.lowerBound), below \(range.upperBound))")
        }
        return v
    }

    mutating func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let at = take(key) else { return nil }
        guard case .boolean(let v) = at.value else { throw wrongType(key, at, expected: "true or false") }
        return v
    }

    mutating func string(_ key: String, nonEmpty: Bool) throws(ConfigurationError) -> String? {
        guard let at = take(key) else { return nil }
        guard case .string(let v) = at.value else { throw wrongType(key, at, expected: "a string in double quotes") }
        if nonEmpty && v.isEmpty { throw error(key, "must not be empty") }
        return v
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws(ConfigurationError) -> T?
    where T.RawValue == String {
        let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let at = take(key) else { return nil }
        guard case .string(let v) = at.value else { throw wrongType(key, at, expected: "one of \(allowed)") }
        guard let choice = T(rawValue: v) else { throw error(key, "\"\(v)\" is not one of \(allowed)") }
        return choice
    }

    mutating func size(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let at = take(key) else { return nil }
        let bytes: Int
        switch at.value {
        case .integer(let v) where v >= 0: bytes = v
        case .string(let text):
            guard let v = ByteCount.parse(text) else {
                throw error(key, "\"\(text)\" is not a size; write a number with a unit, like \"64MiB\" or \"1GiB\"")
            }
            bytes = v
        default: throw wrongType(key, at, expected: "a size like \"1GiB\"")
        }
        guard range.contains(bytes) else {
            throw error(key, "\(ByteCount.format(bytes)) is out of range (\(ByteCount.format(range.lowerBound)) to \(ByteCount.format(range.upperBound)))")
        }
        return bytes
    }

    mutating func powerOfTwoSize(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let bytes = try size(key, in: range) else { return nil }
        guard bytes & (bytes - 1) == 0 else { throw error(key, "\(ByteCount.format(bytes)) is not a power of two") }
        return bytes
    }

    mutating func churn(_ key: String) throws(ConfigurationError) -> Double? {
        guard let at = take(key) else { return nil }
        guard case .string(let text) = at.value else { throw wrongType(key, at, expected: "a rate like \"2000/s\"") }
        guard let rate = ChurnRate.parse(text) else {
            throw error(key, "\"\(text)\" is not an operation rate; write operations per second like \"2000/s\", or \"0/s\"")
        }
        return rate
    }

    mutating func rate(_ key: String) throws(ConfigurationError) -> ByteRate? {
        guard let at = take(key) else { return nil }
        guard case .string(let text) = at.value else {
            throw wrongType(key, at, expected: "a rate like \"64MiB/s\" or \"unlimited\"")
        }
        guard let rate = ByteRate.parse(text) else {
            throw error(key, "\"\(text)\" is not a rate; write a size per second like \"64MiB/s\", or \"unlimited\"")
        }
        return rate
    }

    /// Throws for the first key (in file order) that no reader asked for.
    func rejectUnread() throws(ConfigurationError) {
        guard let first = unread.min(by: { (fields[$0]!.line, $0) < (fields[$1]!.line, $1) }), let at = fields[first]
        else { return }
        let section = first.split(separator: ".").first.map(String.init) ?? ""
        let siblings = ConfigurationLoader.knownKeys.filter { $0.hasPrefix(section + ".") }
        let message = siblings.isEmpty
            ? "unknown section [\(section)]; known sections: hardware, memory, duplex, workload, mmu, tracking, dma, fault"
            : "unknown key; [\(section)] knows " + siblings.map { String($0.dropFirst(section.count + 1)) }.joined(separator: ", ")
        throw ConfigurationError(source: at.source, line: at.line, key: first, message: message)
    }
}
