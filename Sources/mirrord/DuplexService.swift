import Logging
import MirrorCore
import MirrorEmulation
import ServiceLifecycle
import Synchronization

/// The daemon's one service: starts the emulated machine, runs a duplex on a thread of its own,
/// and then either exits (`--once`) or stays duplexed in lockstep until a graceful shutdown.
///
/// A graceful shutdown (SIGTERM, SIGINT) during the duplex asks the engine to stop at its next
/// safe point; a blackout already entered is completed, so the CPUs are never left stopped.
final class DuplexService: Service, Sendable {
    /// Whether the process ends after one duplex.
    enum Mode: Sendable {
        /// Duplex once and return.
        case once
        /// Duplex, then stay in lockstep until shut down.
        case daemon
    }

    private let machine: EmulatedMachine
    private let engine: DuplexEngine
    private let configuration: MirrordConfiguration
    private let mode: Mode
    private let logger: Logger
    private let result = Mutex<DuplexSummary?>(nil)

    init(machine: EmulatedMachine, configuration: MirrordConfiguration, mode: Mode, logger: Logger) {
        self.machine = machine
        self.configuration = configuration
        self.mode = mode
        self.logger = logger
        self.engine = DuplexEngine(hardware: machine, policy: configuration.duplexPolicy)
    }

    /// The summary of the duplex, once it has ended.
    var summary: DuplexSummary? { result.withLock { $0 } }

    func run() async throws {
        defer { machine.shutdown() }
        machine.start()
        let reporter = ProgressReporter(logger: logger, geometry: machine.geometry)
        reporter.starting(configuration: configuration, backend: machine.backendName)

        let summary = await withGracefulShutdownHandler {
            await self.runEngine(reporter: reporter)
        } onGracefulShutdown: {
            self.engine.stopToken.requestStop()
        }
        result.withLock { $0 = summary }

        guard mode == .daemon, summary.isDuplexed else { return }
        logger.info("duplexed: active and spare in lockstep until stopped")
        try? await gracefulShutdown()
        logger.info("stopping in state duplexed")
    }

    /// Runs the engine on its own thread: the loop is CPU-bound and must not block the
    /// cooperative pool that serves signals.
    private func runEngine(reporter: ProgressReporter) async -> DuplexSummary {
        let engine = self.engine
        let box = Mutex<WorkerThread?>(nil)
        let summary = await withCheckedContinuation { continuation in
            box.withLock {
                $0 = WorkerThread(name: "mirrord-engine") {
                    continuation.resume(returning: engine.run(observer: reporter.observe))
                }
            }
        }
        box.withLock { $0?.join() }
        return summary
    }
}
