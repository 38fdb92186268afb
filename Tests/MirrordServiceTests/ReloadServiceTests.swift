import Foundation
import MirrorCore
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import Testing

@testable import MirrordService

@Suite("Reload: applied, needs a restart, rejected")
struct ReloadServiceTests {
    /// A daemon's reload service on the built-in defaults read from a file of `initial` text, and
    /// what it told systemd and the log.
    struct Fixture {
        let path: String
        let configuration: RunningConfiguration
        let duplex: DuplexService
        let reload: ReloadService
        let notifications = NotificationLog()
        let log = LogRecord()

        init(initial: String = "") throws {
            path =
                FileManager.default.temporaryDirectory.appendingPathComponent("reload-\(UUID().uuidString).conf").path
            try initial.write(toFile: path, atomically: true, encoding: .utf8)
            configuration = RunningConfiguration(path: path, configuration: try ConfigurationLoader.load(path: path))
            let notifier = notifications.notifier()
            duplex = DuplexService(
                machine: ScriptedHardware(dirtyPerPass: [10]), configuration: configuration, mode: .daemon,
                logger: log.logger, notifier: notifier)
            duplex.setStatus("duplexed; verified 100000 frames, blackout 10 µs")
            reload = ReloadService(
                configuration: configuration, duplex: duplex, notifier: notifier, logger: log.logger,
                environment: [:])
        }

        func reload(with text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            reload.reload()
        }
    }

    @Test("a valid [duplex] change is applied to the engine at once, announced RELOADING=1 … READY=1")
    func applied() throws {
        let f = try Fixture()
        try f.reload(with: "[duplex]\nthreshold_frames = 128\n")
        #expect(f.duplex.engine.policy.thresholdFrames == 128)
        #expect(f.configuration.current.policy.thresholdFrames == 128)
        #expect(f.notifications.values("RELOADING") == ["1"])
        #expect(f.notifications.all.last?.hasPrefix("READY=1\n") == true)
        #expect(
            f.duplex.status
                == "reloaded (applied duplex.threshold_frames = 128 (was 1024)). duplexed; verified 100000 frames, blackout 10 µs"
        )
        let entry = try #require(f.log.all.last)
        #expect(entry.level == .notice)
        #expect(entry.metadata["message_id"] == MessageID.configurationReloaded.rawValue)
        #expect(entry.metadata["threshold_frames"] == "128")
    }

    @Test("a change to a key that shapes the machine waits for a restart, and says so")
    func needsRestart() throws {
        let f = try Fixture()
        try f.reload(with: "[memory]\nsize = \"2GiB\"\n[duplex]\nmax_passes = 5\n")
        #expect(f.configuration.current.machine.memorySize == 1 << 30, "memory.size keeps its running value")
        #expect(f.configuration.current.policy.maxPasses == 5)
        #expect(
            f.duplex.status.hasPrefix("reloaded (applied duplex.max_passes = 5 (was 30); needs a restart: memory.size)")
        )
        #expect(f.log.all.contains { $0.level == .warning && $0.message.contains("memory.size changed in \(f.path)") })
    }

    @Test("dma.dual_write sits beside the [duplex] keys in the policy, yet waits for a restart like the machine's keys")
    func dualWriteNeedsRestart() throws {
        let f = try Fixture()
        try f.reload(with: "[dma]\ndual_write = false\n")
        #expect(f.duplex.engine.policy.dmaDualWrite, "the engine keeps DMA dual-write on")
        #expect(f.configuration.current.policy.dmaDualWrite)
        #expect(f.duplex.status.hasPrefix("reloaded (needs a restart: dma.dual_write)"))
    }

    @Test("an unchanged file is reported as no change")
    func unchanged() throws {
        let f = try Fixture(initial: "[duplex]\nmax_passes = 7\n")
        try f.reload(with: "[duplex]\nmax_passes = 7\n")
        #expect(f.duplex.status.hasPrefix("reloaded (no change)."))
    }

    @Test("an invalid file is rejected with file, line and key; the running configuration stays in force")
    func rejected() throws {
        let f = try Fixture()
        let before = f.configuration.current
        try f.reload(with: "[duplex]\nthreshold = 128\n")
        #expect(f.configuration.current == before)
        #expect(f.duplex.engine.policy == before.policy)
        #expect(f.duplex.status.hasPrefix("reload rejected (\(f.path):2: duplex.threshold: unknown key;"))
        #expect(f.duplex.status.contains("running configuration kept"))
        #expect(f.notifications.all.last?.hasPrefix("READY=1\n") == true, "a rejected reload still ends the reload")
        let entry = try #require(f.log.all.last)
        #expect(entry.level == .error)
        #expect(entry.metadata["message_id"] == MessageID.configurationRejected.rawValue)
        #expect(entry.metadata["config_line"] == "2")
        #expect(entry.metadata["config_key"] == "duplex.threshold")
    }

    @Test("reloads in a loop leave one bounded STATUS: the latest outcome and the state, not a history")
    func repeatedReloads() throws {
        let f = try Fixture()
        let long = String(repeating: "x", count: 100_000)
        for round in 0..<300 {
            // Valid and invalid files alternate; an invalid one echoes a long value.
            try f.reload(
                with: round.isMultiple(of: 2)
                    ? "[duplex]\nmax_passes = \(round + 1)\n" : "[duplex]\nconvergence = \"\(long)\"\n")
            let sent = try #require(f.notifications.all.last)
            #expect(sent.hasPrefix("READY=1\nSTATUS="))
            #expect(sent.utf8.count <= 1_100, "round \(round): \(sent.utf8.count) bytes")
            #expect(
                !f.duplex.status.contains("xxxxx\(String(repeating: "x", count: 100))"), "a long value is shortened")
            let outcomes =
                f.duplex.status.components(separatedBy: "reload rejected (").count
                + f.duplex.status.components(separatedBy: "reloaded (").count - 2
            #expect(outcomes == 1, "one outcome, round \(round): \(f.duplex.status)")
            #expect(f.duplex.status.hasSuffix("duplexed; verified 100000 frames, blackout 10 µs"))
        }
        #expect(f.configuration.current.policy.maxPasses == 299)
    }

    @Test("a threshold beyond the running memory's frames is rejected, though the new memory.size would allow it")
    func thresholdBeyondRunningMemory() throws {
        let f = try Fixture()
        try f.reload(with: "[memory]\nsize = \"2GiB\"\n[duplex]\nthreshold_frames = 300000\n")
        #expect(f.configuration.current.policy.thresholdFrames == 1024)
        #expect(f.duplex.status.contains("300000 is more than the 262144 frames of the running memory.size"))
    }

    @Test("on the built-in defaults there is nothing to re-read; READY=1 keeps the status")
    func builtInDefaults() throws {
        let notifications = NotificationLog()
        let log = LogRecord()
        let configuration = RunningConfiguration(path: nil, configuration: MirrordConfiguration())
        let duplex = DuplexService(
            machine: ScriptedHardware(dirtyPerPass: [10]), configuration: configuration, mode: .daemon,
            logger: log.logger, notifier: notifications.notifier())
        duplex.setStatus("pass 2: 10 dirty frames (0.0%), threshold 1024")
        ReloadService(
            configuration: configuration, duplex: duplex, notifier: notifications.notifier(), logger: log.logger,
            environment: [:]
        ).reload()
        #expect(notifications.all.last == "READY=1\nSTATUS=pass 2: 10 dirty frames (0.0%), threshold 1024")
        #expect(log.all.last?.message.contains("nothing to re-read") == true)
    }
}
