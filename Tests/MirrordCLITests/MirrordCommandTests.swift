import ArgumentParser
import Foundation
import Testing

@testable import MirrordCLI

/// The flags of `mirrord`: what each sets, which combinations are refused (exit 64, before
/// anything runs), and `--check-config` end to end on a file (exit 0, or 1 with the error).
@Suite("mirrord's flags")
struct MirrordCommandTests {
    /// The command `arguments` parse to, as the root command.
    func parse(_ arguments: [String]) throws -> MirrordCommand {
        try MirrordCommand.parse(arguments)
    }

    /// A scratch configuration file holding `text`.
    func configurationFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// What `arguments` are refused with, by the parser or by `run()`'s own checks (which refuse
    /// before anything runs); nil when the command would run. `run()` is called only for the
    /// combinations it refuses first thing, so that no test starts a daemon.
    func refusal(_ arguments: [String]) async -> (code: ExitCode, message: String)? {
        do {
            let command = try parse(arguments)
            // A combination run() accepts would start a duplex: not run here.
            guard command.refusedCombination != nil else { return nil }
            try await command.run()
            return nil
        } catch {
            return (MirrordCommand.exitCode(for: error), MirrordCommand.message(for: error))
        }
    }

    /// The main job's flags: both set, nothing else.
    @Test("--once --json: one duplex with the summary as JSON")
    func onceJSON() throws {
        let command = try parse(["--once", "--json"])
        #expect(command.once && command.json)
        #expect(command.config == nil && command.checkConfig == nil)
    }

    /// Without flags the daemon runs; the paths land where the runner reads them.
    @Test("no flags: the daemon on the built-in defaults; --config names a file")
    func defaultsAndConfig() throws {
        let daemon = try parse([])
        #expect(!daemon.once && !daemon.json && daemon.config == nil)
        #expect(try parse(["--config", "/etc/mirrord/mirrord.conf"]).config == "/etc/mirrord/mirrord.conf")
        #expect(try parse(["--check-config", "a.conf"]).checkConfig == "a.conf")
        #expect(try parse(["--spare-later"]).spareLater && !daemon.spareLater)
    }

    /// Refused with EX_USAGE (64): by the parser, or by `run()` before it does anything.
    @Test(
        "bad flags and bad combinations: exit 64 with the reason",
        arguments: [
            (["--no-such-flag"], "Unknown option '--no-such-flag'"),
            (["bench"], "Unexpected argument 'bench'"),
            (["--once", "--config"], "Missing value for '--config <path>'"),
            (["--json"], "--json goes with --once"),
            (
                ["--check-config", "a.conf", "--once"],
                "--check-config PATH runs alone; drop --once, --config and --spare-later"
            ),
            (["--check-config", "a.conf", "--config", "b.conf"], "--check-config PATH runs alone"),
            (["--check-config", "a.conf", "--spare-later"], "--check-config PATH runs alone"),
            (["--once", "--spare-later"], "--spare-later goes with the daemon, not --once"),
        ])
    func refused(arguments: [String], message: String) async {
        let refused = await refusal(arguments)
        #expect(refused?.code == .validationFailure, "\(arguments)")
        #expect(refused?.message.contains(message) == true, "\(String(describing: refused?.message))")
    }

    /// `--check-config` end to end through `run()`: the loader, the admission check, the exit status.
    @Test("--check-config on a valid file: exit 0; on a bad one: exit 1")
    func checkConfig() async throws {
        let valid = try configurationFile("[memory]\nsize = \"64MiB\"\n")
        let invalid = try configurationFile("[duplex]\nthreshold_frames = 10\nmax_passes = \"lots\"\n")
        defer {
            try? FileManager.default.removeItem(atPath: valid)
            try? FileManager.default.removeItem(atPath: invalid)
        }
        try await parse(["--check-config", valid]).run()
        do {
            try await parse(["--check-config", invalid]).run()
            Issue.record("a bad file passed --check-config")
        } catch {
            #expect(MirrordCommand.exitCode(for: error) == ExitCode(1))
        }
    }

    /// `bench` is no longer a subcommand: `takeover`, `standby`, `probe` and the hidden `conf-manual` are.
    @Test("takeover, standby, probe and conf-manual are the subcommands, conf-manual hidden, with its own flags")
    func confManual() throws {
        #expect(
            MirrordCommand.configuration.subcommands.map { $0._commandName } == [
                "takeover", "standby", "probe", "conf-manual",
            ])
        let command = try MirrordCommand.parseAsRoot(["conf-manual", "--date", "May 1, 2027"])
        let manual = try #require(command as? ConfManualCommand)
        #expect(manual.date == "May 1, 2027")
        #expect(manual.defaults == "config/mirrord.conf")
    }

    @Test("standby: --image is required")
    func standby() throws {
        let command = try #require(
            try MirrordCommand.parseAsRoot(["standby", "--image", "/srv/spare.img"]) as? StandbyCommand)
        #expect(command.image == "/srv/spare.img")
        #expect(throws: (any Error).self) { try MirrordCommand.parseAsRoot(["standby"]) }
    }

    @Test("probe: --image or --export (one of them), --json, --timeout above 0; --config before it for nbds://")
    func probe() throws {
        let file = try #require(try MirrordCommand.parseAsRoot(["probe", "--image", "/srv/a.img"]) as? ProbeCommand)
        #expect(try file.source() == .image(path: "/srv/a.img") && !file.printsJSON && file.timeout == 5)
        let remote = try #require(
            try MirrordCommand.parseAsRoot([
                "--config", "/etc/m.conf", "probe", "--export", "nbd://b/spare", "--json", "--timeout", "2",
            ]) as? ProbeCommand)
        #expect(try remote.source() == .export(uri: "nbd://b/spare"))
        #expect(remote.printsJSON, "--json after probe prints JSON (whichever command parsed it)")
        #expect(remote.timeout == 2)
        for arguments in [
            ["probe"], ["probe", "--image", "a", "--export", "b"], ["probe", "--image", "a", "--timeout", "0"],
        ] {
            #expect(throws: (any Error).self, "\(arguments)") { try MirrordCommand.parseAsRoot(arguments) }
        }
    }

    @Test("takeover: --image or --export (one of them), --staging in whole frames, --recover-only")
    func takeover() throws {
        let parsed = try MirrordCommand.parseAsRoot(["takeover", "--image", "/srv/spare.img", "--recover-only"])
        let command = try #require(parsed as? TakeoverCommand)
        let options = try command.options(startedAt: 7)
        #expect(options.source == .image(path: "/srv/spare.img") && options.recoverOnly)
        #expect(options.stagingBytes == 256 << 20 && options.startedAt == 7)
        let remote = try #require(
            try MirrordCommand.parseAsRoot(["takeover", "--export", "nbd://b/spare", "--staging", "64MiB"])
                as? TakeoverCommand)
        #expect(try remote.options().source == .export(uri: "nbd://b/spare"))
        #expect(try remote.options().stagingBytes == 64 << 20 && !remote.options().recoverOnly)
        for arguments in [
            ["takeover"], ["takeover", "--image", "a", "--export", "b"],
            ["takeover", "--image", "a", "--staging", "5000"],
        ] {
            let command = try #require(try MirrordCommand.parseAsRoot(arguments) as? TakeoverCommand)
            #expect(throws: ValidationError.self, "\(arguments)") { try command.options() }
        }
    }
}
