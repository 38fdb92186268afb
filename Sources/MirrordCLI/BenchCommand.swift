import ArgumentParser
import MirrorBench
import MirrordService

/// `mirrord bench`: the hot paths against baselines measured in the same run (``Bench``).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure mirrord against baselines from the same run (build with -c release).",
        discussion: "With --json (the main command's flag), print one JSON object instead of a table.")

    /// The main command, whose `--json` flag this subcommand honours.
    @ParentCommand var mirrord: MirrordCommand

    @Option(name: .long, help: "Seconds to measure each store-path case.")
    var seconds: Double = 1.0

    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the copy benchmark.")
    var copySizes: [String] = ["1GiB", "4GiB"]

    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the scaling runs.")
    var scalingSizes: [String] = ["1GiB", "2GiB", "4GiB", "8GiB"]

    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Run only these sections: copy, harvest, blackout, store, scaling, backends, convergence (default: all).")
    var only: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the convergence of the 1 GiB duplex (dirty frames per pass) as an SVG.",
            valueName: "path"))
    var svg: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Module sizes for the convergence section.")
    var convergenceSizes: [String] = ["1GiB", "4GiB"]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The lackey trace the convergence section replays (default: one of xz -6, made once).",
            valueName: "path"))
    var trace: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the convergence section's blackout and slowdown per policy as an SVG.",
            valueName: "path"))
    var policySVG: String?

    private var bench: Bench {
        var bench = Bench()
        bench.json = mirrord.json
        bench.seconds = seconds
        bench.copySizes = copySizes
        bench.scalingSizes = scalingSizes
        bench.only = only
        bench.svg = svg
        bench.convergenceSizes = convergenceSizes
        bench.trace = trace
        bench.policySVG = policySVG
        return bench
    }

    func validate() throws {
        do {
            try bench.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        MirrordRunner.restoreDefaultSignals()
        try bench.run()
    }
}
