#if canImport(Glibc)
import Glibc
#endif

/// `make embed-test`: builds against the public API of MirrorCore, MirrorEmulation and
/// MirrorLinux only, and exits non-zero unless the harvest through the real MMU returns exactly
/// the frames written. It also runs the code of the three DocC articles and checks that the
/// articles show this very code, so that they stay true.
@main
struct EmbedCheck {
    static func main() {
        var failures: [String] = []
        func check(_ name: String, _ body: () throws -> Bool) {
            do {
                if try !body() { failures.append(name) }
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        let backend = HarvestCheck.chooseBackend()
        check("harvest through the real MMU (\(backend.backendName))") { try HarvestCheck.run(backend: backend) }
        check("a region of one's own (\(backend.backendName))") { try RegionTracking.run(backend: backend) }
        check("the engine on a backend of one's own") { EngineEmbedding.run() }
        check("backends tested with MachineDriver") { try DriverTesting.run(backend: backend) }
        check("the code of the DocC articles is this package's") { try ArticleCode.run() }
        guard failures.isEmpty else {
            for failure in failures { print("embed-test: FAILED: \(failure)") }
            exit(1)
        }
        print("embed-test: passed")
    }
}
