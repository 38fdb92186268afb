// A release build with a static standard library (`make release`) compiles this target too and
// has no Testing module; test scoping traits need Swift 6.1.
#if canImport(Testing) && compiler(>=6.1)
import Testing

/// A trait for suites whose machines run CPU and DMA threads (or install the real MMU's
/// process-wide signal handler): their tests run one at a time across every test target, so that
/// they neither compete for the host's cores (which the machines' pacing and the tests' own
/// expectations assume they have) nor share the handler. `.serialized` alone orders only the
/// tests of one suite; the test targets share one process and would otherwise run side by side.
package struct MachineThreads: SuiteTrait, TestTrait, TestScoping {
    /// Applies to every test of a suite that carries it.
    package var isRecursive: Bool { true }

    /// A scope for each test case; none for a suite itself (its tests take the gate one by one).
    package func scopeProvider(for test: Test, testCase: Test.Case?) -> MachineThreads? {
        testCase == nil ? nil : self
    }

    /// Runs `function` holding the gate.
    package func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await MachineGate.shared.acquire()
        do {
            try await function()
        } catch {
            await MachineGate.shared.release()
            throw error
        }
        await MachineGate.shared.release()
    }
}

extension Trait where Self == MachineThreads {
    /// One at a time with every other test of machines with threads, in any test target.
    package static var machineThreads: MachineThreads { MachineThreads() }
}

/// The gate ``MachineThreads`` holds: one holder, the others waiting in order.
actor MachineGate {
    static let shared = MachineGate()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
#endif
