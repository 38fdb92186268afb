import Foundation
import MirrorCore
import MirrorTestSupport
import MirrordConfig
import ServiceLifecycle
import Testing

@testable import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The metrics file node_exporter's textfile collector reads.
@Suite("Metrics textfile", .serialized)
struct MetricsTextfileTests {
    /// A fresh directory for a metrics file.
    static func directory() -> String {
        let directory = NSTemporaryDirectory() + "mirrord-metrics-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o755)
        return directory
    }

    /// The file's samples by name (with labels), comments left out.
    static func values(_ path: String) throws -> [String: Double] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return Dictionary(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let value = Double(parts[1]) else { return nil }
                return (String(parts[0]), value)
            }, uniquingKeysWith: { $1 })
    }

    @Test("after a graceful shutdown of a duplexed daemon the file says stopped, not duplexed")
    func afterGracefulStop() async throws {
        let path = Self.directory() + "/mirrord.prom"
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = 1_000
        config.policy.blackoutTargetNanoseconds = 0
        config.metricsTextfile = path
        let log = LogRecord()
        let service = DuplexService(
            machine: ScriptedHardware(dirtyPerPass: [50_000, 900]),
            configuration: RunningConfiguration(path: nil, configuration: config), mode: .daemon,
            logger: log.logger, notifier: NotificationLog().notifier())
        let group = ServiceGroup(services: [service], logger: log.logger)
        let running = Task { try await group.run() }
        await until("the file says duplexed") { (try? Self.values(path))?["mirrord_duplexed"] == 1 }
        await group.triggerGracefulShutdown()
        try await running.value
        let values = try Self.values(path)
        #expect(values["mirrord_duplexed"] == 0 && values["mirrord_lockstep_seconds"] == 0)
        #expect(values[#"mirrord_state{state="stopped"}"#] == 1)
        for state in MetricsState.allCases where state != .stopped {
            #expect(values[#"mirrord_state{state="\#(state.rawValue)"}"#] == 0, "not \(state.rawValue)")
        }
        #expect(values["mirrord_duplexes"] == 1, "the run's counts stay readable")
    }

    @Test("after a duplex the file holds the finished duplex's values in the exposition format, written by rename")
    func afterDuplex() async throws {
        let directory = NSTemporaryDirectory() + "mirrord-metrics-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o755)
        let path = directory + "/mirrord.prom"
        let hardware = ScriptedHardware(dirtyPerPass: [50_000, 5_000, 900])
        var config = MirrordConfiguration()
        config.policy.thresholdFrames = 1_000
        config.policy.blackoutTargetNanoseconds = 0
        config.metricsTextfile = path
        let service = DuplexService(
            machine: hardware, configuration: RunningConfiguration(path: nil, configuration: config),
            mode: .once, logger: LogRecord().logger, notifier: NotificationLog().notifier())
        try await service.run()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let values = Dictionary(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let value = Double(parts[1]) else { return nil }
                return (String(parts[0]), value)
            }, uniquingKeysWith: { $1 })
        #expect(values["mirrord_duplexed"] == 1)
        #expect(values[#"mirrord_state{state="duplexed"}"#] == 1 && values[#"mirrord_state{state="simplex"}"#] == 0)
        #expect(
            values["mirrord_passes"] == 2 && values["mirrord_verify_mismatches"] == 0
                && values["mirrord_failovers"] == 0)
        #expect((values["mirrord_blackout_seconds"] ?? 0) > 0)
        #expect(text.contains("# TYPE mirrord_passes gauge"))
        #expect(
            !FileManager.default.fileExists(atPath: path + ".tmp"),
            "written through a temporary file renamed into place")
        var info = stat()
        #expect(
            stat(path, &info) == 0 && info.st_mode & 0o777 == 0o644,
            "readable by node_exporter's user whatever the umask")
    }
}
