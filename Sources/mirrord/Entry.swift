import Dispatch
import MirrordCLI

#if canImport(Glibc)
import Glibc
#endif

/// The process's entry point: the `mirrord` command, whose flags and subcommands MirrordCLI
/// declares. A synchronous main, so that limits no machine fits in are refused before the Swift
/// runtime starts its thread pool; then the command runs as an async main would.
@main
enum Entry {
    static func main() {
        MirrordCommand.prepareProcess()
        Task {
            await MirrordCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}
