import Foundation
import MirrorCore
import MirrordConfig
import Testing

/// Hostile and careless input to the loader: every case gets one clear error naming the place,
/// or is read as the operator meant it; none is accepted silently.
@Suite("Configuration: hostile input")
struct HostileConfigurationTests {
    /// A file of `bytes` in a fresh temporary directory; returns its path.
    func temporaryFile(_ bytes: [UInt8], name: String = "mirrord.conf") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func loadError(_ path: String) -> ConfigurationError? {
        do {
            _ = try ConfigurationLoader.load(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test("a CRLF file is read line by line, as with LF; a leading comment does not swallow it")
    func crlf() throws {
        let config = try parse("# c\r\n[duplex]\r\nmax_passes = 7\r\nthreshold_frames = 12 # note\r\n")
        #expect(config.policy.maxPasses == 7)
        #expect(config.policy.thresholdFrames == 12)
        #expect(
            error("[duplex]\r\nmax_passes = 0\r\n")?.description.hasPrefix(
                "test.conf:2: duplex.max_passes: 0 is out of range") == true)
    }

    @Test("control characters other than tabs are refused on their line, shown escaped")
    func controlCharacters() {
        let e = error("[duplex]\nmax_passes = 3\nconvergence = \"none\u{1B}[2J\"\n")
        #expect(e?.line == 3)
        #expect(e?.description.contains("control character U+001B") == true)
        #expect(e?.description.contains("\u{1B}") == false)
        #expect(error("[duplex]\nmax_passes\t=\t3\n") == nil, "tabs are spaces")
        #expect(error("[duplex]\nmax_passes\r = 3\n")?.description.contains("U+000D") == true, "a stray CR is visible")
    }

    @Test("an environment value with a control character is refused, not cut at its newline")
    func environmentControlCharacters() {
        let newline = error("", environment: ["MIRRORD_MEMORY_SIZE": "64MiB\n[duplex]\nmax_passes = 1"])
        #expect(newline?.source == "environment MIRRORD_MEMORY_SIZE")
        #expect(newline?.description.contains("control character U+000A") == true)
        #expect(newline?.description.contains("\n") == false)
        let cr = error("", environment: ["MIRRORD_DUPLEX_CONVERGENCE": "none\r"])
        #expect(cr?.description.contains("U+000D") == true)
    }

    @Test("an unknown section is refused at its header, also with no keys under it")
    func unknownSections() {
        let empty = error("[duplex]\nmax_passes = 3\n[dupelx]\n")
        #expect(empty?.line == 3)
        #expect(
            empty?.description
                == "test.conf:3: unknown section [dupelx]; known sections: hardware, memory, duplex, workload, mmu, tracking, dma, control, metrics, remote, fault"
        )
        let withKey = error("[dupelx]\n\nthreshold_frames = 10\n")
        #expect(withKey?.line == 1, "the header's line, not the key's")
    }

    @Test("a long value is shown shortened, quoted, with its length")
    func longValues() {
        let long = String(repeating: "y", count: 1_000_000)
        let e = error("[duplex]\nconvergence = \"\(long)\"\n")
        let text = e?.description ?? ""
        #expect(text.utf8.count < 300, "\(text.utf8.count) bytes")
        #expect(text.contains("(1000000 bytes)"))
        let bare = error("[duplex]\nconvergence = \(long)\n")?.description ?? ""
        #expect(bare.utf8.count < 300 && bare.contains("is not a value"))
    }

    @Test("only regular files of at most 1 MiB are read: no endless device, no blocking FIFO")
    func files() throws {
        #expect(
            loadError("/dev/zero")?.description
                == "/dev/zero: cannot read the file: not a regular file (a character device)")
        let dir = FileManager.default.temporaryDirectory.path
        #expect(loadError(dir)?.description.contains("not a regular file (a directory)") == true)
        let fifo = try temporaryFile([], name: "placeholder") + ".fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(
            loadError(fifo)?.description.contains("not a regular file (a FIFO)") == true,
            "returns at once with no writer")
        let big = try temporaryFile([UInt8](repeating: UInt8(ascii: "#"), count: (1 << 20) + 1))
        #expect(loadError(big)?.description.contains("at most 1048576") == true)
        let crlf = try temporaryFile(Array("[duplex]\r\nmax_passes = 9\r\n".utf8))
        #expect(try ConfigurationLoader.load(path: crlf).policy.maxPasses == 9)
    }

    @Test("what the run would refuse, the check refuses: writers that do not fit a frame, unusable traces")
    func checkAgreesWithRun() throws {
        let cpus = error("[workload]\ncpus = 256\n")
        #expect(cpus?.key == "workload.cpus")
        #expect(cpus?.description.contains("257 writers") == true)
        #expect(error("[workload]\nstore_size = \"4KiB\"\n")?.description.contains("3 writers") == true)
        #expect(
            error("[workload]\nstore_size = \"4KiB\"\ncpus = 1\n[dma]\nrate = \"0B/s\"\n") == nil, "one writer fits")

        let empty = try temporaryFile([], name: "empty.trace")
        let garbage = try temporaryFile(Array("hello\nI  04000000,3\n L 04000000,8\n".utf8), name: "garbage.trace")
        let good = try temporaryFile(Array("I  04000000,3\n S 04222cac,4\n".utf8), name: "good.trace")
        for path in [empty, garbage] {
            let e = error("[workload]\npattern = \"trace\"\ntrace = \"\(path)\"\n")
            #expect(e?.line == 3)
            #expect(e?.description.contains("has no store lines") == true, "\(String(describing: e))")
        }
        #expect(
            error("[workload]\npattern = \"trace\"\ntrace = \"/dev/zero\"\n")?.description.contains(
                "not a regular file") == true)
        #expect(error("[workload]\npattern = \"trace\"\ntrace = \"\(good)\"\n") == nil)
    }
}
