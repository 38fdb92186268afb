import Foundation
import MirrorCore
import MirrorEmulation
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import MirrordControl
import ServiceLifecycle
import Testing

@testable import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The status line, `mirrorctl status`'s reply, the metrics textfile and the journal read the one
/// state value: in each state they say the same.
@Suite("The state's readers agree in every state", .serialized, .machineThreads)
struct StateAgreementTests {
    /// A service and what it told the world.
    struct Observed {
        let service: DuplexService
        let log: LogRecord
        let notifications: NotificationLog
        let metricsDirectory: MetricsDirectory
        var metricsPath: String { metricsDirectory.file }

        /// The metric `mirrord_state{state=…}` that is 1, read from the file.
        var metricsState: String? {
            guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return nil }
            let ones = text.split(separator: "\n").filter {
                $0.hasPrefix("mirrord_state{") && Double($0.split(separator: " ").last ?? "") == 1
            }
            guard ones.count == 1 else { return nil }
            return ones[0].split(separator: "\"").dropFirst().first.map(String.init)
        }

        /// `state` in the control socket's `status` reply.
        var controlState: String? {
            guard case .status(let reply) = service.controlReply(to: .status) else { return nil }
            return reply.state.rawValue
        }

        /// `MIRRORD_STATE` of the journal's last state-change entry.
        var journalState: String? {
            log.all.last { $0.metadata["message_id"] == MessageID.stateChanged.rawValue }?.metadata["mirrord_state"]
        }

        /// Checks that every reader names `name`.
        func expectAgreement(
            _ name: ServiceState.Name, journal: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            service.publishMetrics()
            #expect(service.state.name == name, sourceLocation: sourceLocation)
            #expect(
                service.status.hasPrefix(name.rawValue), "status line: \(service.status)",
                sourceLocation: sourceLocation)
            #expect(controlState == name.rawValue, sourceLocation: sourceLocation)
            #expect(metricsState == name.rawValue, sourceLocation: sourceLocation)
            if journal { #expect(journalState == name.rawValue, sourceLocation: sourceLocation) }
            let sent = notifications.values("STATUS").last
            #expect(sent == nil || sent == service.status, "the last STATUS= sent", sourceLocation: sourceLocation)
        }
    }

    /// A directory of the test's own for the metrics file, removed with the observation.
    final class MetricsDirectory: Sendable {
        let path = NSTemporaryDirectory() + "mirrord-agree-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var file: String { path + "/mirrord.prom" }
        init() { mkdir(path, 0o755) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A service on `machine` with `edit` applied to a small configuration.
    static func observe(
        _ machine: any ServiceMachine, mode: DuplexService.Mode = .daemon, clock: any EngineClock = SystemClock(),
        _ edit: (inout MirrordConfiguration) -> Void = { _ in }
    ) -> Observed {
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = 1_000
        let directory = MetricsDirectory()
        config.metricsTextfile = directory.file
        edit(&config)
        let log = LogRecord()
        let notifications = NotificationLog()
        let service = DuplexService(
            machine: machine, configuration: RunningConfiguration(path: nil, configuration: config), mode: mode,
            logger: log.logger, notifier: notifications.notifier(), clock: clock)
        return Observed(service: service, log: log, notifications: notifications, metricsDirectory: directory)
    }

    @Test("starting: before the machine runs")
    func starting() {
        let observed = Self.observe(ScriptedHardware(dirtyPerPass: [10]))
        observed.expectAgreement(.starting, journal: false)
    }

    @Test("duplexing, then stopping: an engine held after pass 1, then a graceful shutdown")
    func duplexingThenStopping() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 5_000, 900])
        let observed = Self.observe(hardware, clock: hardware.clock) { $0.hangAfterPass = 1 }
        let group = ServiceGroup(services: [observed.service], logger: observed.log.logger)
        let running = Task { try await group.run() }
        await until("the engine hangs after pass 1") { observed.service.status.contains("hung after pass 1") }
        observed.expectAgreement(.duplexing)
        await group.triggerGracefulShutdown()
        try await running.value
        observed.expectAgreement(.stopping)
        #expect(observed.service.status == "stopping in state passes")
    }

    @Test("duplexed: in lockstep")
    func duplexed() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100])
        let observed = Self.observe(hardware, clock: hardware.clock)
        let group = ServiceGroup(services: [observed.service], logger: observed.log.logger)
        let running = Task { try await group.run() }
        await until("duplexed") { observed.service.state == .duplexed }
        observed.expectAgreement(.duplexed)
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test("simplex: the spare failed and was removed")
    func simplex() async throws {
        let config = busyMachineConfiguration(megabytes: 32)
        let machine = try MachineFactory.makeMachine(config)
        let observed = Self.observe(machine) {
            $0.machine = config.machine
            $0.policy.thresholdFrames = 256
            $0.policy.blackoutTargetNanoseconds = 0
        }
        let group = ServiceGroup(services: [observed.service], logger: observed.log.logger)
        let running = Task { try await group.run() }
        await until("duplexed") { observed.service.state == .duplexed }
        observed.service.inject(ModuleFault(.lost, module: .spare))
        await until("simplex") { observed.service.state.name == .simplex }
        observed.expectAgreement(.simplex)
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test("failed: a daemon whose verify found differences")
    func failed() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100], differingFrames: [42])
        let observed = Self.observe(hardware, clock: hardware.clock)
        await #expect(throws: DuplexService.DuplexFailed.self) { try await observed.service.run() }
        observed.expectAgreement(.failed)
    }
}
