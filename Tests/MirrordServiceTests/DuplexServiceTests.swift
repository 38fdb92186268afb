import Logging
import MirrorCore
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import ServiceLifecycle
import Synchronization
import Testing

@testable import MirrordService

@Suite("The duplex service: READY, STATUS, the scrub in lockstep, a stop")
struct DuplexServiceTests {
    /// The built-in defaults (the blackout target on) with `threshold`: the service measures on
    /// the scripted hardware's clock, so how the passes end is the same on every host.
    func configuration(threshold: Int = 1_000) -> RunningConfiguration {
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = threshold
        return RunningConfiguration(path: nil, configuration: config)
    }

    @Test("--once: READY=1 when the engine starts, a STATUS per state and pass, the machine started and shut down")
    func once() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 5_000, 900])
        let notifications = NotificationLog()
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .once,
            logger: LogRecord().logger, notifier: notifications.notifier(), clock: hardware.clock)
        try await service.run()
        let summary = try #require(service.summary)
        #expect(summary.outcome == .duplexed(.target), "pass 2 leaves a blackout under the 1 ms target")
        #expect(!hardware.snapshot.started, "the machine's threads are shut down")
        #expect(hardware.snapshot.calls.first == "dualWrite(true)")
        #expect(notifications.all.first == "READY=1\nSTATUS=duplexing: dirty tracking on")
        #expect(notifications.values("READY").count == 1)
        // Every line of the duplex begins with the service's state; the passes' lines are the
        // engine's own, measured on the scripted clock (the blackout target on).
        let statuses = notifications.values("STATUS")
        let passLines = summary.passes.map { pass in
            "duplexing: "
                + StatusText.forEvent(
                    .passCompleted(pass, thresholdFrames: 1_000, targetMicroseconds: 1_000), geometry: hardware.geometry
                )!
        }
        let fullCopy = try #require(summary.fullCopy)
        let expected =
            [
                "duplexing: dirty tracking on",
                "duplexing: full copy of 200000 frames (800000KiB)",
                "duplexing: " + StatusText.forEvent(.fullCopyCompleted(fullCopy), geometry: hardware.geometry)!,
            ] + passLines
        #expect(Array(statuses.prefix(expected.count)) == expected)
        #expect(statuses.count == expected.count + 3, "\(statuses)")
        #expect(statuses.dropLast().last == "duplexing: verify: comparing 200000 frames in lockstep")
        #expect(statuses.dropLast(2).last?.hasPrefix("duplexing: blackout: final copy of ") == true)
        #expect(
            statuses.last == StatusText.summaryLine(summary) && statuses.last?.hasPrefix("duplexed; verified") == true)
        #expect(summary.passes.count == 2)
    }

    @Test("a failed duplex in --once ends the service with its summary and no error")
    func onceFailed() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100], differingFrames: [42])
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .once,
            logger: LogRecord().logger, notifier: NotificationLog().notifier())
        try await service.run()
        #expect(service.summary?.outcome == .failed(.verifyMismatch))
    }

    @Test("a daemon whose duplex fails ends with an error, ERRNO=EIO and the failure as its status")
    func daemonFailed() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100], differingFrames: [42])
        let notifications = NotificationLog()
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .daemon,
            logger: LogRecord().logger, notifier: notifications.notifier())
        await #expect(throws: DuplexService.DuplexFailed.self) { try await service.run() }
        #expect(notifications.values("ERRNO") == ["5"])
        #expect(
            notifications.values("STATUS").last?.hasPrefix("failed: verify failed in lockstep: 1 frame differ") == true)
    }

    @Test("a start that cannot settle (a takeover's image not made durable) fails: no duplex, the failure reported")
    func settleFails() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100])
        let notifications = NotificationLog()
        let outcomes = Mutex<[String]>([])
        // --once: should the start go on, its duplex ends the run (the test fails, it does not hang).
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .once,
            logger: LogRecord().logger, notifier: notifications.notifier()
        ) {
            "takeover failed: the export taken over could not be flushed"
        } started: { outcome in
            switch outcome {
            case .running(let line): outcomes.withLock { $0.append("running: \(line)") }
            case .failed(let why): outcomes.withLock { $0.append("failed: \(why)") }
            }
        }
        await #expect(throws: DuplexService.DuplexFailed.self) { try await service.run() }
        #expect(outcomes.withLock { $0 } == ["failed: takeover failed: the export taken over could not be flushed"])
        #expect(notifications.values("ERRNO") == ["5"])
        #expect(service.summary?.outcome == .failed(.hardwareError))
        #expect(service.summary?.passes.isEmpty == true, "no duplex began")
    }

    @Test(
        "in lockstep the scrub finds frames that differ: the spare is suspect and re-duplexed; when that verify fails too, the daemon ends with an error"
    )
    func scrubFindsDifference() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100])
        let notifications = NotificationLog()
        let log = LogRecord()
        // A 40 ms watchdog makes the scrub run every 10 ms.
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .daemon,
            logger: log.logger, notifier: notifications.notifier(watchdog: .milliseconds(40)))
        let running = Task { try await service.run() }
        await until("the first duplex ended") { service.summary != nil }
        #expect(service.summary?.isDuplexed == true)
        hardware.setDifferingFrames([77_777])
        await #expect(throws: DuplexService.DuplexFailed.self) { try await running.value }
        #expect(
            log.all.contains {
                $0.level == .error && $0.metadata["verify_mismatches"] == "1"
                    && $0.message
                        == "lockstep lost: 1 frames differ between active and spare (first: 77777); spare suspect: re-duplexing from the active module"
            })
        #expect(service.lifecycle.duplexes == 2)
        #expect(service.status.hasPrefix("failed: verify failed in lockstep: 1 frame differ"))
        #expect(notifications.values("ERRNO") == ["5"])
        #expect(notifications.values("WATCHDOG").count >= 1, "scrub slices feed the watchdog")
    }

    @Test("a graceful shutdown in lockstep stops the scrub and says where it stopped")
    func gracefulStop() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 100])
        let log = LogRecord()
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .daemon,
            logger: log.logger, notifier: NotificationLog().notifier())
        let group = ServiceGroup(services: [service], logger: log.logger)
        let running = Task { try await group.run() }
        await until("the first duplex ended") { service.summary != nil }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(
            log.all.contains { $0.message == "stopped in state duplexed" && $0.metadata["mirrord_state"] == "duplexed" }
        )
        #expect(!hardware.snapshot.started)
    }
}
