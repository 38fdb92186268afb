import Foundation
import MirrordControl
import Testing

/// Replies of the control protocol: what the daemon encodes is what mirrorctl decodes, with the
/// keys docs/control.md documents.
@Suite("Control replies: round trips and the documented keys")
struct ControlReplyTests {
    /// A status in the middle of a duplex: every optional value there.
    static let duplexing = StatusReply(
        state: .duplexing, status: "duplexing: pass 2", spareInstalled: true,
        progress: ProgressReport(
            engineState: .passes, phaseFramesDone: 10, phaseFramesTotal: 16_384, pass: 2, dirtyFrames: 900,
            dirtyRate: 45_000, throttlePercent: 12.5, predictedBlackoutMicroseconds: 640, targetMicroseconds: 1_000,
            thresholdFrames: 1_000, lastBlackoutMicroseconds: 512, lockstepSeconds: 3.25,
            passes: [
                PassReport(
                    pass: 1, dirtyFrames: 50_000, remainingDirtyFrames: 5_000, dirtyRate: 90_000,
                    predictedBlackoutMicroseconds: nil, throttlePercent: 0),
                PassReport(
                    pass: 2, dirtyFrames: 5_000, remainingDirtyFrames: 900, dirtyRate: 45_000,
                    predictedBlackoutMicroseconds: 640, throttlePercent: 12.5),
            ]),
        lifecycle: LifecycleReport(
            state: .duplexing, faults: ["active module: module lost"],
            failovers: [FailoverReport(fault: "active module: module lost", blackoutMicroseconds: 75)],
            lost: nil, duplexes: 2, duplexed: 1, sparesRemoved: 1, sparesInstalled: 1),
        configuration: ["memory.size": "64MiB", "hardware.backend": "emulated"])

    /// A status before anything happened: every optional value missing.
    static let starting = StatusReply(
        state: .failed, status: "failed: both modules lost", spareInstalled: false,
        progress: ProgressReport(engineState: .idle), lifecycle: LifecycleReport(state: .failed, lost: "everything"),
        configuration: [:])

    @Test(
        "every reply survives a round trip through its line",
        arguments: [
            ControlReply.status(duplexing), .status(starting),
            .acknowledged(ControlAcknowledgement(action: .injectFault, what: "spare module: module lost")),
            .acknowledged(ControlAcknowledgement(action: .scrub, what: "the next scrub slice is requested")),
            .refused(ControlRefusal(error: "busy: 32 clients are connected; try again")),
        ])
    func roundTrip(reply: ControlReply) throws {
        let line = ControlCoding.line(for: reply)
        #expect(!line.contains(UInt8(ascii: "\n")))
        #expect(try ControlReply(line: line) == reply)
    }

    /// The top-level object of `reply`'s line.
    func object(_ reply: ControlReply) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: ControlCoding.line(for: reply)) as? [String: Any])
    }

    @Test("a status has exactly the documented keys, a value not known yet as null")
    func statusKeys() throws {
        let status = try object(.status(Self.starting))
        #expect(
            Set(status.keys)
                == ["ok", "version", "state", "status", "spare_installed", "progress", "lifecycle", "configuration"])
        #expect(status["ok"] as? Bool == true && status["version"] as? String == MirrordVersion.string)
        let progress = try #require(status["progress"] as? [String: Any])
        #expect(
            Set(progress.keys)
                == [
                    "engine_state", "phase_frames_done", "phase_frames_total", "pass", "dirty_frames", "dirty_rate_fps",
                    "throttle_percent", "predicted_blackout_us", "target_us", "threshold_frames", "last_blackout_us",
                    "lockstep_s", "passes",
                ])
        #expect(progress["pass"] is NSNull && progress["lockstep_s"] is NSNull)
        let lifecycle = try #require(status["lifecycle"] as? [String: Any])
        #expect(
            Set(lifecycle.keys)
                == [
                    "state", "faults", "failovers", "lost", "duplexes", "duplexed", "spares_removed",
                    "spares_installed",
                ])
        let passes = try #require(
            (try object(.status(Self.duplexing)))["progress"].flatMap { ($0 as? [String: Any])?["passes"] }
                as? [[String: Any]])
        #expect(
            Set(passes[1].keys)
                == [
                    "pass", "dirty_frames", "remaining_dirty_frames", "dirty_rate_fps", "predicted_blackout_us",
                    "throttle_percent",
                ])
        #expect(passes[0]["predicted_blackout_us"] == nil, "a pass without a prediction leaves the key out")
    }

    @Test("an acknowledgement and an error have ok, and their own fields")
    func actionKeys() throws {
        let acknowledged = try object(.acknowledged(ControlAcknowledgement(action: .replaceSpare, what: "x")))
        #expect(acknowledged["ok"] as? Bool == true && acknowledged["action"] as? String == "replace-spare")
        #expect(Set(acknowledged.keys) == ["ok", "action", "what"])
        let refused = try object(.refused(ControlRefusal(error: "no")))
        #expect(refused["ok"] as? Bool == false && Set(refused.keys) == ["ok", "error"])
    }

    @Test("a line that is no reply is refused with a reason")
    func unreadable() {
        for (line, reason) in [
            ("garbage", "not JSON"), ("[1]", "not a JSON object"), (#"{"ok":true,"state":"duplexed"}"#, "no \""),
            (#"{"ok":true,"action":"format-disk","what":"x"}"#, "\"action\" is not valid"),
        ] {
            do throws(ControlReplyError) {
                _ = try ControlReply(line: Data(line.utf8))
                Issue.record("\(line) decoded")
            } catch {
                #expect(error.reason.hasPrefix(reason), "\(line): \(error)")
            }
        }
    }
}
