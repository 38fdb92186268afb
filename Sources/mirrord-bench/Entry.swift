import MirrorBench

/// The bench's entry point: the `mirrord-bench` command, whose flags and sections MirrorBench
/// declares, and nothing else.
@main
enum Entry {
    /// Parses the flags and runs the bench, exiting as ArgumentParser does.
    static func main() {
        BenchCommand.main()
    }
}
