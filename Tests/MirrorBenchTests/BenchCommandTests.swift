import ArgumentParser
import Testing

@testable import MirrorBench

/// `mirrord-bench`'s own flags: what they set on the ``Bench``, and what is refused (exit 64)
/// before anything is measured.
@Suite("mirrord-bench: its flags and the request's checks")
struct BenchCommandTests {
    /// The flags reach the bench, `--json` included (now the bench's own flag).
    @Test("the flags set the bench: --json, --only with several sections, sizes, plots")
    func flags() throws {
        let command = try BenchCommand.parse([
            "--json", "--only", "copy", "harvest", "--copy-sizes", "64MiB", "--seconds", "0.5", "--svg", "c.svg",
            "--policy-svg", "p.svg", "--trace", "t.lackey",
        ])
        let bench = command.bench
        #expect(bench.json)
        #expect(bench.only == ["copy", "harvest"])
        #expect(bench.copySizes == ["64MiB"])
        #expect(bench.seconds == 0.5)
        #expect(bench.svg == "c.svg" && bench.policySVG == "p.svg" && bench.trace == "t.lackey")
        #expect(bench.scalingSizes == Bench().scalingSizes, "what is not given keeps its default")
    }

    /// The remote section's running machine: how long it replicates, at what workload rate.
    @Test("--remote-seconds and --remote-rate reach the bench; the defaults are 5 s and the workload's")
    func remoteFlags() throws {
        let bench = try BenchCommand.parse(["--only", "remote", "--remote-seconds", "2.5", "--remote-rate", "2MiB/s"])
            .bench
        #expect(bench.remoteSeconds == 2.5 && bench.remoteRate == "2MiB/s")
        let defaults = try BenchCommand.parse([]).bench
        #expect(defaults.remoteSeconds == 5 && defaults.remoteRate == nil)
    }

    /// The tail section's samples: 1,000 of each size unless told.
    @Test("--tail-samples reaches the bench; the default is 1,000 of each size")
    func tailFlags() throws {
        #expect(try BenchCommand.parse(["--only", "tail", "--tail-samples", "300"]).bench.tailSamples == 300)
        #expect(try BenchCommand.parse([]).bench.tailSamples == 1_000)
    }

    /// No flags: a table of every section.
    @Test("no flags: every section, as a table")
    func defaults() throws {
        let bench = try BenchCommand.parse([]).bench
        #expect(!bench.json && bench.only.isEmpty)
        #expect(bench.copySizes == ["1GiB", "4GiB"])
    }

    /// An unknown section, a size that is not whole frames, an unknown flag: each refused by the
    /// parser with the usage exit status.
    @Test(
        "refused before measuring: unknown section, a size not in whole frames, an unknown flag",
        arguments: [
            (["--only", "nosuch"], "--only: unknown section \"nosuch\""),
            (["--copy-sizes", "1000"], "\"1000\" is not a size in whole 4KiB frames"),
            (["--only", "scaling", "--scaling-sizes", "lots"], "\"lots\" is not a size in whole 4KiB frames"),
            (["--frobnicate"], "Unknown option '--frobnicate'"),
            (["--only", "remote", "--remote-seconds", "0"], "--remote-seconds: 0.0 is not between 0 and 3600"),
            (["--only", "remote", "--remote-rate", "fast"], "--remote-rate: \"fast\" is not a rate"),
            (["--only", "tail", "--tail-samples", "0"], "--tail-samples: 0 is not between 1 and 100000"),
        ])
    func refused(arguments: [String], message: String) {
        do {
            _ = try BenchCommand.parse(arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            #expect(BenchCommand.exitCode(for: error) == .validationFailure)
            #expect(BenchCommand.message(for: error).contains(message), "\(BenchCommand.message(for: error))")
        }
    }

    /// A size is only checked for the sections that run: `--only store` ignores the copy sizes.
    @Test("sizes of sections that do not run are not checked")
    func onlyWantedSizes() throws {
        var bench = Bench()
        bench.only = ["store"]
        bench.copySizes = ["not a size"]
        try bench.validate()
        bench.only = ["copy"]
        #expect(throws: Bench.InvalidRequest.self) { try bench.validate() }
    }
}
