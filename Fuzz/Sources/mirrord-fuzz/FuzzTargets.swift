import MirrorEmulation
import MirrordConfig

#if canImport(Glibc)
import Glibc
#endif

/// The parsers that read outside input, as fuzz targets: each takes any bytes and must end in a
/// value or a thrown error, never a trap, a hang or unbounded memory.
enum FuzzTargets {
    /// The configuration file with its environment overrides: the bytes before the first NUL are
    /// the file; each line after it, `NAME=VALUE`, is one environment variable.
    static func configuration(_ bytes: UnsafeBufferPointer<UInt8>) {
        let split = bytes.firstIndex(of: 0) ?? bytes.count
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<split]), as: UTF8.self)
        var environment: [String: String] = [:]
        if split < bytes.count {
            let rest = String(decoding: UnsafeBufferPointer(rebasing: bytes[(split + 1)...]), as: UTF8.self)
            for line in rest.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                environment[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        do {
            let configuration = try ConfigurationLoader.parse(text: text, source: "fuzz.conf", environment: environment)
            // What the loader accepts, the machine's own check must accept too.
            precondition(
                configuration.machine.writerLayoutProblem == nil, "the loader accepted writers that do not fit")
            // A spare URI it accepts is one NBDURI takes apart; the staging area fits the memory.
            let remote = configuration.remote
            precondition(!remote.isRemote || NBDURI(remote.spareURI) != nil, "the loader accepted a bad URI")
            _ = (remote.warnsCleartext, remote.redactedSpareURI)
            let staging = configuration.replication.stagingBytes
            precondition(
                staging > 0 && staging <= configuration.machine.memorySize
                    && staging % configuration.machine.frameSize == 0,
                "the loader accepted a staging area that does not fit the memory")
        } catch {
            _ = error.description
        }
    }

    /// A scratch file the file-reading targets rewrite for each input (the trace reader and the
    /// release log's reader read files).
    nonisolated(unsafe) static var scratchFile: (fd: Int32, path: String)?

    /// The scratch file's path, holding `bytes`, or nil when it cannot be made.
    static func scratch(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if scratchFile == nil {
            // An unnamed file, reached through /proc/self/fd: nothing is left in /tmp.
            var template = Array("/tmp/mirrord-fuzz-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else { return nil }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            scratchFile = (fd, "/proc/self/fd/\(fd)")
        }
        guard let (fd, path) = scratchFile else { return nil }
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, bytes.baseAddress, bytes.count, 0)
        return path
    }

    /// The lackey trace reader, on the bytes as a file, for a small module.
    static func trace(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let path = scratch(bytes) else { return }
        do {
            let trace = try LackeyTrace(path: path, frameCount: 64, unitSize: 64)
            precondition(!trace.stores.isEmpty && trace.stores.allSatisfy { $0.frame < 64 && $0.unit < 64 })
        } catch {
            _ = error.description
        }
    }

    /// The release log's reader, on the bytes as a file: what it accepts has increasing epochs.
    static func releaseLog(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let path = scratch(bytes) else { return }
        do {
            let records = try ReleaseLog.read(path: path)
            precondition(zip(records, records.dropFirst()).allSatisfy { $0.epoch < $1.epoch })
        } catch {
            _ = error.description
        }
    }

    /// The targets by name.
    static let names = ["configuration", "trace", "release-log"]

    /// Runs the target named `name` on `bytes`.
    static func run(_ name: String, _ bytes: UnsafeBufferPointer<UInt8>) {
        switch name {
        case "trace": trace(bytes)
        case "release-log": releaseLog(bytes)
        default: configuration(bytes)
        }
    }
}

/// libFuzzer's entry point. The target is chosen by the environment variable `FUZZ_TARGET`
/// (`configuration`, the default, `trace` or `release-log`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? "configuration"
    FuzzTargets.run(name, UnsafeBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
/// Without libFuzzer (a plain build): replays the files named on the command line through the
/// target named first, as the regression tests of what fuzzing found.
@main
enum Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, FuzzTargets.names.contains(name) else {
            let usage = "usage: mirrord-fuzz \(FuzzTargets.names.joined(separator: "|")) FILE…\n"
            _ = usage.withCString { write(2, $0, strlen($0)) }
            exit(64)
        }
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                let message = "mirrord-fuzz: cannot read \(path)\n"
                _ = message.withCString { write(2, $0, strlen($0)) }
                exit(66)
            }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n == 0 { break }
                bytes += buffer[0..<n]
            }
            fclose(file)
            bytes.withUnsafeBufferPointer { FuzzTargets.run(name, $0) }
        }
        print("mirrord-fuzz \(name): \(arguments.count - 1) inputs, no crash")
    }
}
#endif
