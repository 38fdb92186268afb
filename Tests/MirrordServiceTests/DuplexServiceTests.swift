import Logging
import MirrorCore
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import ServiceLifecycle
import Testing

@testable import MirrordService

@Suite("The duplex service: READY, STATUS, the scrub in lockstep, a stop")
struct DuplexServiceTests {
    func configuration(threshold: Int = 1_000) -> RunningConfiguration {
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = threshold
        // The service measures on the system clock: with the target on, how the passes end would
        // depend on this host's speed. The engine's tests cover the target.
        config.policy.blackoutTargetNanoseconds = 0
        return RunningConfiguration(path: nil, configuration: config)
    }

    @Test("--once: READY=1 when the engine starts, a STATUS per state and pass, the machine started and shut down")
    func once() async throws {
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 5_000, 900])
        let notifications = NotificationLog()
        let service = DuplexService(
            machine: hardware, configuration: configuration(), mode: .once,
            logger: LogRecord().logger, notifier: notifications.notifier())
        try await service.run()
        let summary = try #require(service.summary)
        #expect(summary.outcome == .duplexed(.threshold))
        #expect(!hardware.snapshot.started, "the machine's threads are shut down")
        #expect(hardware.snapshot.calls.first == "dualWrite(true)")
        #expect(notifications.all.first == "READY=1\nSTATUS=starting: dirty tracking on")
        #expect(notifications.values("READY").count == 1)
        #expect(
            notifications.values("STATUS") == [
                "starting: dirty tracking on",
                "full copy of 200000 frames (800000KiB)",
                StatusText.forEvent(.fullCopyCompleted(try #require(summary.fullCopy)), geometry: hardware.geometry)!,
                "pass 1: 50000 dirty frames (25.0%), threshold 1000; dirtied at \(StatusText.rateText(summary.passes[0].dirtyRateFramesPerSecond)) frames/s",
                "pass 2: 5000 dirty frames (2.5%), threshold 1000; dirtied at \(StatusText.rateText(summary.passes[1].dirtyRateFramesPerSecond)) frames/s",
                "blackout: final copy of 900 frames (passes ended: threshold)",
                "verify: comparing 200000 frames in lockstep",
                StatusText.summaryLine(summary),
            ])
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
        while service.summary == nil { await Task.yield() }
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
        while service.summary == nil { await Task.yield() }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(
            log.all.contains { $0.message == "stopped in state duplexed" && $0.metadata["mirrord_state"] == "duplexed" }
        )
        #expect(!hardware.snapshot.started)
    }
}
