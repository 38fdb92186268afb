import MirrordControl
import Testing

@testable import mirrorctl

/// What `mirrorctl status` prints: one state, never two that contradict each other.
@Suite("mirrorctl status: one state, the engine's phase only while duplexing")
struct StatusViewTests {
    func reply(_ state: ServiceStateName, engine: EngineState, pass: Int? = nil) -> StatusReply {
        StatusReply(
            state: state, status: "\(state.rawValue): …", spareInstalled: state != .simplex,
            progress: ProgressReport(engineState: engine, pass: pass, thresholdFrames: 1_024),
            lifecycle: LifecycleReport(state: .duplexed, duplexes: 1, duplexed: 1), configuration: [:])
    }

    @Test("while duplexing, the engine's phase follows the state")
    func duplexing() {
        #expect(StatusView(reply(.duplexing, engine: .passes, pass: 3)).stateLine == "duplexing (pass 3)")
        #expect(StatusView(reply(.duplexing, engine: .fullCopy)).stateLine == "duplexing (full copy)")
        #expect(StatusView(reply(.duplexing, engine: .duplexed)).stateLine == "duplexing (starting)")
    }

    @Test("in every other state the state alone: simplex after a duplexed engine says simplex, not duplexed")
    func otherStates() {
        for state in ServiceStateName.allCases where state != .duplexing {
            let text = StatusView(reply(state, engine: .duplexed)).text
            #expect(text.hasPrefix("state: \(state.rawValue)\n"), "\(text)")
            #expect(!text.contains("engine"), "\(text)")
        }
        let simplex = StatusView(reply(.simplex, engine: .duplexed)).text
        #expect(
            !simplex.split(separator: "\n")[0].contains("duplexed"), "the issue's `state: simplex (engine: duplexed)`")
    }
}
