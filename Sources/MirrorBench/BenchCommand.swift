import ArgumentParser
import MirrorCore
import MirrordControl

/// `mirrord-bench`: the hot paths against baselines measured in the same run (``Bench``). Its
/// own executable, so that the daemon carries neither the bench nor its plots; the flags are
/// declared here and what they do is ``Bench``'s.
package struct BenchCommand: ParsableCommand {
    /// The command's name, abstract and version.
    package static let configuration = CommandConfiguration(
        commandName: "mirrord-bench",
        abstract: "Measure mirrord against baselines from the same run (build with -c release).",
        discussion: """
            Each figure is a ratio to a baseline measured in the same run, so that a shared, noisy \
            host still gives comparable numbers. `make bench` builds it in release and runs it \
            with BENCH_ARGS.
            """,
        version: MirrordVersion.string)

    /// Print one JSON object instead of a table.
    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    /// Seconds to measure each store-path case.
    @Option(name: .long, help: "Seconds to measure each store-path case.")
    var seconds: Double = 1.0

    /// Module sizes for the copy benchmark.
    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the copy benchmark.")
    var copySizes: [String] = ["1GiB", "4GiB"]

    /// Module sizes for the scaling runs.
    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the scaling runs.")
    var scalingSizes: [String] = ["1GiB", "2GiB", "4GiB", "8GiB"]

    /// Run only these sections (empty: all).
    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Run only these sections: copy, harvest, blackout, tail, store, scaling, backends, convergence, remote (default: all)."
    )
    var only: [String] = []

    /// Blackouts of each size (about 256 and 1,024 final frames) the tail section takes.
    @Option(name: .long, help: "Blackouts of each size (about 256 and 1,024 final frames) the tail section takes.")
    var tailSamples = 1_000

    /// Where to write the tail section's distribution as an SVG.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the tail section's distribution (the share of blackouts above each blackout_ratio) as an SVG.",
            valueName: "path"))
    var tailSVG: String?

    /// Where to write the convergence of the 1 GiB duplex as an SVG.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the convergence of the 1 GiB duplex (dirty frames per pass) as an SVG.",
            valueName: "path"))
    var svg: String?

    /// Module sizes for the convergence section.
    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the convergence section.")
    var convergenceSizes: [String] = ["1GiB", "4GiB"]

    /// The lackey trace the convergence section replays.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The lackey trace the convergence section replays (default: one of xz -6, made once).",
            valueName: "path"))
    var trace: String?

    /// Where to write the convergence section's blackouts and slowdowns per policy as an SVG.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the convergence section's blackout and slowdown per policy as an SVG.",
            valueName: "path"))
    var policySVG: String?

    /// The export the remote section writes to.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The NBD export the remote section writes to (any URI libnbd reads; default: a local nbd-server).",
            valueName: "uri"))
    var remoteExport: String?

    /// Memory the remote section copies.
    @Option(name: .long, help: "Memory the remote section copies to the export.")
    var remoteSize = "1GiB"

    /// Seconds the remote section replicates a running machine for.
    @Option(name: .long, help: "Seconds the remote section replicates a running machine for (its epochs).")
    var remoteSeconds: Double = 5

    /// The workload's rate in the remote section's running machine.
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The workload's rate in the remote section's running machine (default: workload.rate's default).",
            valueName: "rate"))
    var remoteRate: String?

    /// The bench the flags ask for.
    var bench: Bench {
        var bench = Bench()
        bench.json = json
        bench.seconds = seconds
        bench.copySizes = copySizes
        bench.scalingSizes = scalingSizes
        bench.only = only
        bench.tailSamples = tailSamples
        bench.tailSVG = tailSVG
        bench.svg = svg
        bench.convergenceSizes = convergenceSizes
        bench.trace = trace
        bench.remoteExport = remoteExport
        bench.remoteSize = remoteSize
        bench.remoteSeconds = remoteSeconds
        bench.remoteRate = remoteRate
        bench.policySVG = policySVG
        return bench
    }

    /// The bench's flags, the defaults where none is given.
    package init() {}

    /// Refuses unknown sections and sizes that are not whole frames before anything is measured.
    package func validate() throws {
        do {
            try bench.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Runs the sections asked for and prints the report.
    package func run() throws {
        try bench.run()
    }
}
