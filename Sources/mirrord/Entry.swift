import CMirrordEntry
import Dispatch
import MirrordCLI

#if canImport(Glibc)
import Glibc
#endif

/// The process's entry point: the `mirrord` command, whose flags and subcommands MirrordCLI
/// declares. A synchronous main, so that limits no machine fits in are refused before the Swift
/// runtime starts its thread pool; then the command runs as an async main would. The start-up
/// signal handlers are in place before `main` (CMirrordEntry's constructor).
@main
enum Entry {
    static func main() {
        // CMirrordEntry's constructor installed the start-up signal handlers before main (the
        // call keeps it linked); prepareProcess installs them again, which changes nothing.
        _ = mirrord_entry_signals_installed()
        MirrordCommand.prepareProcess()
        Task {
            await MirrordCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}
