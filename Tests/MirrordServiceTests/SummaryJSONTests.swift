import Foundation
import MirrorCore
import MirrorTestSupport
import MirrordService
import Testing

@Suite("The JSON summary of --json")
struct SummaryJSONTests {
    func object(_ summary: DuplexSummary) throws -> [String: Any] {
        let text = try SummaryJSON.encode(summary)
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The JSON type of a value: string, integer, number, array or object (the summary has no
    /// booleans).
    func kind(_ value: Any?) -> String {
        switch value {
        case is String: "string"
        case let n as NSNumber: n.stringValue.contains(".") || n.stringValue.contains("e") ? "number" : "integer"
        case is [Any]: "array"
        case is [String: Any]: "object"
        default: "missing"
        }
    }

    @Test("a duplexed summary has exactly the documented keys, with their types")
    func duplexed() throws {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 2_000, 100])
        let summary = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 20), clock: hardware.clock)
            .run()
        let json = try object(summary)
        let top: [String: String] = [
            "result": "string", "reason": "string", "message": "string", "state": "string", "backend": "string",
            "memory_bytes": "integer", "frame_size": "integer", "frames": "integer", "threshold_frames": "integer",
            "pass_end_reason": "string", "full_copy": "object", "passes": "array", "blackout": "object",
            "verify": "object",
            "total_us": "integer", "hardware_statistics": "object", "convergence": "object",
        ]
        #expect(Set(json.keys) == Set(top.keys))
        for (key, type) in top { #expect(kind(json[key]) == type, "\(key)") }
        #expect(json["result"] as? String == "duplexed")
        #expect(json["reason"] as? String == "target")
        #expect(json["state"] as? String == "duplexed")
        #expect(json["pass_end_reason"] as? String == "target")
        let fullCopy = try #require(json["full_copy"] as? [String: Any])
        #expect(Set(fullCopy.keys) == ["duration_us", "bytes"])
        let pass = try #require((json["passes"] as? [[String: Any]])?.first)
        #expect(
            Set(pass.keys) == [
                "pass", "dirty_frames", "copied_frames", "duration_us", "dirty_rate_fps", "remaining_dirty_frames",
                "predicted_blackout_us", "throttle_percent", "cpu_throttle_percent",
            ])
        #expect(kind(pass["pass"]) == "integer")
        #expect(kind(pass["predicted_blackout_us"]) == "integer")
        #expect(kind(pass["cpu_throttle_percent"]) == "array")
        let blackout = try #require(json["blackout"] as? [String: Any])
        #expect(
            Set(blackout.keys) == [
                "duration_us", "stop_us", "final_frames", "final_copy_us", "verify_us", "predicted_us",
                "final_harvest_us", "resume_us", "off_cpu_us",
            ])
        let convergence = try #require(json["convergence"] as? [String: Any])
        #expect(
            Set(convergence.keys) == [
                "policy", "target_us", "throttle_max_percent", "max_throttle_percent", "throttled_us",
                "cpu_max_throttle_percent", "cpu_slowdown", "passes_cpu_slowdown", "stop_exceeds_target",
                "deadline_reached",
            ],
            "baseline and slowdown appear only when the machine has CPUs to measure")
        #expect(convergence["policy"] as? String == "dirty-limit")
        #expect(convergence["target_us"] as? Int == 1_000)
        let verify = try #require(json["verify"] as? [String: Any])
        #expect(
            Set(verify.keys) == [
                "frames_checked", "mismatches", "first_mismatches", "candidates", "duration_us", "confirm_us",
            ])
        #expect(kind(verify["first_mismatches"]) == "array")
    }

    @Test("a failed summary adds failed_in and names the reason")
    func failed() throws {
        let hardware = ScriptedHardware(dirtyPerPass: [5_000, 100], differingFrames: [9])
        let json = try object(DuplexEngine(hardware: hardware, policy: DuplexPolicy()).run())
        #expect(json["result"] as? String == "failed")
        #expect(json["reason"] as? String == "verify_mismatch")
        #expect(json["state"] as? String == "failed")
        #expect(json["failed_in"] as? String == "verify")
        #expect((json["verify"] as? [String: Any])?["first_mismatches"] as? [Int] == [9])
    }

    @Test("every outcome encodes to the result and reason strings tools rely on")
    func outcomes() {
        #expect(DuplexOutcome.duplexed(.maxPasses).result == "duplexed")
        #expect(DuplexOutcome.duplexed(.maxPasses).reason == "max_passes")
        #expect(DuplexOutcome.failed(.hardwareError).result == "failed")
        #expect(DuplexOutcome.replicating(.target).result == "replicating")
        #expect(DuplexOutcome.replicating(.target).reason == "target")
        #expect(
            DuplexFailureReason.allCases.map(\.rawValue) == [
                "verify_mismatch", "stopped", "hardware_error", "not_started", "module_failed", "spare_unreachable",
                "spare_failed", "spare_refused",
            ])
    }
}
