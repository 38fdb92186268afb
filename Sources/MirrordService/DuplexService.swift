import Logging
import MirrorCore
import MirrorEmulation
import MirrorSystemd
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's main service: starts the emulated machine, runs a duplex on a thread of its own,
/// then either returns (`--once`) or stays duplexed, scrubbing memory slice by slice to check that
/// lockstep holds, until a graceful shutdown.
///
/// A graceful shutdown (SIGTERM, SIGINT) announces `STOPPING=1` and asks the engine to stop at
/// its next safe point; a blackout already entered is completed, so the CPUs are never left
/// stopped. The last log entry says which state mirrord stopped in.
public final class DuplexService: Service, Sendable {
    /// Whether the process ends after one duplex.
    public enum Mode: Sendable {
        /// Duplex once and return.
        case once
        /// Duplex, then stay in lockstep until shut down.
        case daemon
    }

    /// Why a daemon ends with a failure status (so that `Restart=on-failure` acts).
    public struct DuplexFailed: Error, CustomStringConvertible {
        /// What failed.
        public var description: String
    }

    /// Frames compared per scrub tick (256 MiB of 4 KiB frames).
    static let scrubSliceFrames = 65_536

    /// The engine that runs the duplex.
    public let engine: DuplexEngine
    private let machine: any ServiceMachine
    private let configuration: RunningConfiguration
    private let mode: Mode
    private let logger: Logger
    private let reporter: ProgressReporter
    private let result = Mutex<DuplexSummary?>(nil)
    private let startFailed = Mutex(false)

    /// A service for `machine`, with the configuration in force and where progress goes.
    public init(machine: any ServiceMachine, configuration: RunningConfiguration, mode: Mode, logger: Logger,
                notifier: SystemdNotifier) {
        self.machine = machine
        self.configuration = configuration
        self.mode = mode
        self.logger = logger
        let current = configuration.current
        let engine = DuplexEngine(hardware: machine, policy: current.policy)
        self.engine = engine
        self.reporter = ProgressReporter(
            logger: logger, geometry: machine.geometry, notifier: notifier,
            hangAfterPass: current.hangAfterPass, stopToken: engine.stopToken)
    }

    /// The summary of the duplex, once it has ended.
    public var summary: DuplexSummary? { result.withLock { $0 } }

    /// Whether the service could not start the machine (a thread refused): a resource the
    /// process lacks, not a failed duplex.
    public var couldNotStart: Bool { startFailed.withLock { $0 } }

    /// The last status text sent.
    public var status: String { reporter.status }

    /// Replaces the engine's status text.
    public func setStatus(_ text: String) { reporter.setStatus(text) }

    /// Puts a reload's outcome in front of the engine's status text (replacing an earlier
    /// reload's) and returns the status to send with `READY=1`.
    public func statusAfterReload(_ outcome: String) -> String { reporter.statusAfterReload(outcome) }

    /// Starts the machine, duplexes, then (as a daemon) scrubs until a graceful shutdown.
    public func run() async throws {
        defer { machine.shutdown() }
        // Every thread the service needs is made now: the engine's (which then scrubs), the
        // CPUs', the DMA engine's. Nothing later depends on creating one.
        let thread: ServiceThread
        do {
            thread = try ServiceThread(name: "mirrord-engine")
            try machine.start()
        } catch {
            let text = "cannot start the machine: \(error)"
            logger.error("\(text)", metadata: ["mirrord_state": "idle"])
            reporter.notifier.fatal(status: text, errno: EAGAIN)
            let policy = configuration.current.policy
            var failed = DuplexSummary(backend: machine.backendName, geometry: machine.geometry,
                                       thresholdFrames: policy.thresholdFrames, policy: policy)
            failed.outcome = .failed(.hardwareError)
            failed.message = text
            failed.finalState = .failed
            failed.failedIn = .idle
            result.withLock { $0 = failed }
            startFailed.withLock { $0 = true }
            throw DuplexFailed(description: text)
        }
        defer { thread.stop() }
        reporter.starting(configuration: configuration.current, backend: machine.backendName)
        if let signal = StartupSignal.received {
            // Arrived after the start-up's check and before the service group's own handlers.
            logger.notice("\(signal) during start-up: stopping before the duplex", metadata: ["mirrord_state": "idle"])
            engine.stopToken.requestStop()
        }

        let summary = await withGracefulShutdownHandler {
            await self.runEngine(on: thread)
        } onGracefulShutdown: {
            self.reporter.notifier.stopping(status: "stopping in state \(self.reporter.state.rawValue)")
            self.engine.stopToken.requestStop()
        }
        result.withLock { $0 = summary }

        guard mode == .daemon else { return }
        if summary.outcome == .failed(.stopped) {
            return  // the engine logged "stopped on request in state …" last
        }
        guard summary.isDuplexed else {
            reporter.notifier.fatal(status: StatusText.summaryLine(summary), errno: EIO)
            throw DuplexFailed(description: summary.message)
        }
        logger.info("duplexed: active and spare in lockstep until stopped; scrubbing memory every \(reporter.watchdog.tick)",
                    metadata: ["mirrord_state": "duplexed"])
        let lost = await scrubWhileDuplexed(on: thread)
        if lost {
            reporter.notifier.fatal(status: reporter.status, errno: EIO)
            throw DuplexFailed(description: reporter.status)
        }
        logger.info("stopped in state duplexed", metadata: ["mirrord_state": "duplexed"])
    }

    /// Runs the engine on the service's thread.
    private func runEngine(on thread: ServiceThread) async -> DuplexSummary {
        let engine = self.engine
        let reporter = self.reporter
        return await thread.run { engine.run(observer: reporter.observe) }
    }

    /// Compares one slice of memory per tick until shutdown (on the service's thread), feeding the
    /// watchdog as each slice completes. Returns true if lockstep was found broken or could not be
    /// checked.
    private func scrubWhileDuplexed(on thread: ServiceThread) async -> Bool {
        let frames = machine.geometry.frameCount
        let slice = min(frames, Self.scrubSliceFrames)
        let lost = try? await cancelWhenGracefulShutdown { () async throws -> Bool in
            var next = 0
            while true {
                try await Task.sleep(for: self.reporter.watchdog.tick)
                let range = next..<min(next + slice, frames)
                next = range.upperBound == frames ? 0 : range.upperBound
                let engine = self.engine
                let outcome = await thread.run { Result { try engine.scrub(frames: range) } }
                switch outcome {
                case .success(let result):
                    if self.reporter.scrubbed(result, frames: range, sweepEnded: range.upperBound == frames) { return true }
                case .failure(let error):
                    self.reporter.scrubFailed(error)
                    return true
                }
            }
        }
        return lost ?? false
    }
}
