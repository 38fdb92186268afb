import MirrorCore

/// The engine run of MirrorCore's article "Embed the engine with your own backend".
enum EngineEmbedding {
    /// Duplexes an ``ArrayHardware`` whose CPU keeps storing during the passes; returns whether
    /// it ended duplexed with the spare equal to the active module.
    static func run() -> Bool {
        let hardware = ArrayHardware(frameCount: 1_024)
        for frame in 0..<1_024 { hardware.store(frame: frame, value: 1) }

        let engine = DuplexEngine(hardware: hardware, policy: DuplexPolicy(thresholdFrames: 8))
        let summary = engine.run { event in
            // The observer runs on the engine's thread: here the CPU stores between two steps.
            if case .fullCopyCompleted = event {
                for frame in stride(from: 0, to: 1_024, by: 7) { hardware.store(frame: frame, value: 2) }
            }
        }

        switch summary.outcome {
        case .duplexed(let passEnd):
            print(
                "embed-test: \(summary.backend) duplexed after \(summary.passes.count) passes (\(passEnd.rawValue)), "
                    + "blackout \(summary.blackout?.durationMicroseconds ?? 0) µs, "
                    + "\(summary.verify?.framesChecked ?? 0) frames verified")
            return summary.verify?.mismatches == 0
        case .replicating:
            // Only with a spare on another host (a SpareStore), which this check does not give.
            print("embed-test: \(summary.backend) replicating, but no spare on another host was given")
            return false
        case .failed(let reason):
            print("embed-test: \(summary.backend) failed (\(reason.rawValue)): \(summary.message)")
            return false
        }
    }
}
