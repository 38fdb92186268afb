import Logging
import MirrorCore
import MirrorEmulation
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import ServiceLifecycle
import Testing

@testable import MirrordService

/// The service's life cycle on the emulated machine: failover, simplex, replacement, re-duplex,
/// a double failure, a suspect spare, predicted failures. The machine's threads run; the tests
/// wait for states, never for lengths of time.
@Suite("Fault tolerance in service: failover, simplex, re-duplex", .serialized, .machineThreads)
struct FaultToleranceServiceTests {
    /// A small, busy machine and a configuration that duplexes it quickly.
    func configuration(_ edit: (inout MirrordConfiguration) -> Void = { _ in }) -> MirrordConfiguration {
        var config = busyMachineConfiguration(megabytes: 32)
        config.policy.thresholdFrames = 256
        config.policy.blackoutTargetNanoseconds = 0
        config.policy.baselineNanoseconds = 0
        edit(&config)
        return config
    }

    /// A running daemon (or `--once`) service on an emulated machine, with its log.
    struct Running {
        let service: DuplexService
        let machine: EmulatedMachine
        let log: LogRecord
        let notifications: NotificationLog
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// The service's own last log entry (the group logs after it).
        var lastEntry: LogRecord.Entry? { log.all.last { $0.metadata["mirrord_state"] != nil } }

        /// Waits until `condition` holds (a hang detector: a failure after two minutes).
        func until(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool) async {
            await MirrordServiceTests.until(what, sourceLocation: sourceLocation, condition)
        }

        func stop() async throws {
            await group.triggerGracefulShutdown()
            try await task.value
        }
    }

    func start(_ config: MirrordConfiguration, mode: DuplexService.Mode = .daemon) throws -> Running {
        let machine = try MachineFactory.makeMachine(config)
        let log = LogRecord()
        let notifications = NotificationLog()
        let service = DuplexService(
            machine: machine, configuration: RunningConfiguration(path: nil, configuration: config),
            mode: mode, logger: log.logger, notifier: notifications.notifier(watchdog: .milliseconds(40)))
        let group = ServiceGroup(services: [service], logger: log.logger)
        // `--once` returns by itself: run it alone (a group takes a service's return as a failure).
        let task = mode == .once ? Task { try await service.run() } : Task { try await group.run() }
        return Running(
            service: service, machine: machine, log: log, notifications: notifications, group: group, task: task)
    }

    @Test(
        "the active module fails while duplexed: failover (crit, with its fields), simplex, then a replacement is re-duplexed"
    )
    func failoverAndReduplex() async throws {
        let running = try start(configuration())
        await running.until("duplexed") { running.service.lifecycle.state == .duplexed }
        #expect(running.service.lifecycle.duplexes == 1, "\(running.log.all.map(\.message))")
        running.service.inject(ModuleFault(.uncorrectable, module: .active, frame: 4_321))
        await running.until("simplex") { running.service.lifecycle.state == .simplex }
        #expect(
            running.service.status
                == "simplex: active module failed (uncorrectable error at frame 4321); running on the former spare; replace the failed module"
        )
        let failover = try #require(running.log.all.first { $0.metadata["message_id"] == MessageID.failover.rawValue })
        #expect(failover.level == .critical)
        #expect(failover.metadata["module"] == "active" && failover.metadata["frame"] == "4321")
        #expect(Int(failover.metadata["failover_blackout_usec"] ?? "") != nil)
        #expect(running.service.lifecycle.failovers.count == 1)
        #expect(!running.machine.hasSpare)

        running.service.replaceSpare()
        await running.until("duplexed again") { running.service.lifecycle.duplexed == 2 }
        #expect(running.service.lifecycle.state == .duplexed)
        #expect(running.service.status.hasPrefix("duplexed; verified 8192 frames"))
        #expect(running.log.all.contains { $0.metadata["message_id"] == MessageID.spareInstalled.rawValue })
        #expect(running.log.all.contains { $0.metadata["message_id"] == MessageID.reduplexed.rawValue })
        try await running.stop()
        #expect(running.lastEntry?.message == "stopped in state duplexed")
    }

    @Test(
        "the spare fails while duplexed: simplex, no failover; a second failure (the active module) ends the service, saying what was lost"
    )
    func spareThenActive() async throws {
        let running = try start(configuration())
        await running.until("duplexed") { running.service.lifecycle.state == .duplexed }
        running.service.inject(ModuleFault(.lost, module: .spare))
        await running.until("simplex") { running.service.lifecycle.state == .simplex }
        #expect(running.service.status == "simplex: spare module failed (module lost); replace the spare module")
        #expect(running.service.lifecycle.failovers.isEmpty && running.service.lifecycle.sparesRemoved == 1)
        running.service.inject(ModuleFault(.lost, module: .active))
        await #expect(throws: DuplexService.DuplexFailed.self) { try await running.task.value }
        let lost = try #require(running.service.lifecycle.lost)
        #expect(lost.hasPrefix("a second failure while simplex: active module module lost"))
        #expect(running.service.lifecycle.state == .failed)
        #expect(
            running.log.all.contains {
                $0.level == .critical && $0.metadata["message_id"] == MessageID.memoryLost.rawValue
            })
        #expect(running.notifications.values("ERRNO") == ["5"])
    }

    @Test(
        "--once with the spare failing in the passes: the duplex is aborted, never duplexed, and the pair runs simplex")
    func spareFailsDuringDuplex() async throws {
        let running = try start(
            configuration {
                $0.faultDrill.target = .spare
                $0.faultDrill.moment = .passes
            }, mode: .once)
        try await running.task.value
        let summary = try #require(running.service.summary)
        #expect(summary.outcome == .failed(.moduleFailed))
        #expect(summary.message.contains("spare module: module lost"))
        #expect(running.service.lifecycle.state == .simplex && running.service.lifecycle.duplexed == 0)
        let json = try SummaryJSON.encode(summary, lifecycle: running.service.lifecycle)
        #expect(json.contains("\"spares_removed\" : 1") && json.contains("\"result\" : \"failed\""))
    }

    @Test(
        "a frame, then the whole active module, lost in one batch during the first duplex: the final report names the whole loss"
    )
    func worstLossInOneBatch() async throws {
        let config = configuration()
        let machine = try MachineFactory.makeMachine(config)
        // Both strike in the duplex's blackout, before the engine notices either: one batch.
        let frame = ModuleFault(.uncorrectable, module: .active, frame: 100)
        let whole = ModuleFault(.lost, module: .active)
        machine.injectAtNextBlackout(frame)
        machine.injectAtNextBlackout(whole)
        let log = LogRecord()
        let service = DuplexService(
            machine: machine, configuration: RunningConfiguration(path: nil, configuration: config), mode: .once,
            logger: log.logger, notifier: NotificationLog().notifier())
        await #expect(throws: DuplexService.DuplexFailed.self, "the memory is lost") { try await service.run() }
        let lost = try #require(service.lifecycle.lost)
        #expect(lost.hasSuffix("the machine's memory is lost"), "the whole loss, not the frame's: \(lost)")
        #expect(service.lifecycle.faults == [frame.description, whole.description], "both faults answered")
        #expect(service.state == .failed(.memoryLost(lost)))
        #expect(service.status.contains("the machine's memory is lost"), "\(service.status)")
    }

    @Test(
        "a fault drilled in a blackout is reported where it struck: failed_in blackout, with the target on or off",
        arguments: [UInt64(0), 2_000_000])
    func blackoutFaultPhase(target: UInt64) async throws {
        let running = try start(
            configuration {
                $0.policy.blackoutTargetNanoseconds = target
                $0.faultDrill.target = .active
                $0.faultDrill.kind = .uncorrectable
                $0.faultDrill.frame = 100
                $0.faultDrill.moment = .blackout
            }, mode: .once)
        await #expect(throws: DuplexService.DuplexFailed.self, "the frame's data is lost") {
            try await running.task.value
        }
        let summary = try #require(running.service.summary)
        #expect(summary.outcome == .failed(.moduleFailed))
        #expect(summary.failedIn == .blackout, "struck in a blackout, not in \(summary.failedIn?.rawValue ?? "-")")
        #expect(summary.message.contains("duplex aborted in state blackout"), "\(summary.message)")
    }

    @Test(
        "the scrub finds the modules different: the spare is suspect, lockstep off, and it is duplexed anew from the active module"
    )
    func suspectSpareIsReduplexed() async throws {
        // No writers: a store in lockstep could otherwise repair the corrupted unit before the scrub.
        let running = try start(
            configuration {
                $0.machine.workload.cpus = 0
                $0.machine.dma.rate = .limited(bytesPerSecond: 0)
            })
        await running.until("duplexed") { running.service.lifecycle.state == .duplexed }
        let frame = 1_234
        running.machine.spare.base.storeBytes(
            of: ~running.machine.active.base.load(fromByteOffset: frame * 4096, as: UInt64.self),
            toByteOffset: frame * 4096, as: UInt64.self)
        await running.until("duplexed again") { running.service.lifecycle.duplexed == 2 }
        #expect(running.log.all.contains { $0.level == .error && $0.message.contains("spare suspect: re-duplexing") })
        #expect(running.service.lifecycle.state == .duplexed)
        try await running.stop()
    }

    @Test("correctable errors past the limit predict the active module's failure: failover before it fails")
    func predictiveFailure() async throws {
        let running = try start(configuration { $0.faultTolerance.correctableLimit = 3 })
        await running.until("duplexed") { running.service.lifecycle.state == .duplexed }
        for frame in 0..<2 { running.service.inject(ModuleFault(.correctable, module: .active, frame: frame)) }
        await running.until("two correctable errors counted") { running.service.lifecycle.faults.count == 2 }
        #expect(running.service.lifecycle.state == .duplexed, "below the limit nothing happens")
        running.service.inject(ModuleFault(.correctable, module: .active, frame: 2))
        await running.until("simplex") { running.service.lifecycle.state == .simplex }
        #expect(
            running.log.all.contains {
                $0.level == .warning
                    && $0.message.hasPrefix("predictive failure: active module had 3 correctable errors")
            })
        #expect(running.service.lifecycle.failovers.count == 1)
        try await running.stop()
        #expect(running.lastEntry?.message == "stopped in state simplex")
    }

    @Test("with auto_reduplex off a replacement waits for the operator's reduplex")
    func operatorStartsReduplex() async throws {
        let running = try start(configuration { $0.faultTolerance.autoReduplex = false })
        await running.until("duplexed") { running.service.lifecycle.state == .duplexed }
        running.service.inject(ModuleFault(.lost, module: .spare))
        await running.until("simplex") { running.service.lifecycle.state == .simplex }
        running.service.replaceSpare()
        await running.until("the replacement installed") { running.service.lifecycle.sparesInstalled == 1 }
        #expect(
            running.service.status
                == "simplex: replacement spare installed; start a re-duplex (duplex.auto_reduplex is off)")
        #expect(running.service.lifecycle.duplexes == 1)
        running.service.reduplex()
        await running.until("duplexed again") { running.service.lifecycle.duplexed == 2 }
        try await running.stop()
    }
}
