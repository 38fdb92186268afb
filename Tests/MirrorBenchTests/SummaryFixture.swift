import MirrorCore

/// Duplex summaries made by hand, the rows a bench section would measure, so that the report's
/// arithmetic and checks can be held to known figures without running a machine.
enum SummaryFixture {
    /// A summary of a duplex of `bytes` under `policy`: `duplexed` at the threshold unless
    /// `failed`, a blackout of `blackout` µs over `finalFrames` frames (with its stop, final
    /// harvest and copy), the prediction and the convergence figures given.
    static func summary(
        bytes: Int = 1 << 30, policy: ConvergencePolicy = DuplexPolicy().convergence, failed: Bool = false,
        blackout: UInt64 = 800, predicted: UInt64? = 760, finalFrames: Int = 300, stop: UInt64 = 100,
        finalHarvest: UInt64 = 50, finalCopy: UInt64 = 600, offCPU: UInt64 = 0, total: UInt64 = 1_500_000,
        passes: Int = 4, slowdown: Double? = 1.1, cpuMaximumThrottle: [Double] = [0.4, 0, 0, 0]
    ) -> DuplexSummary {
        var duplexPolicy = DuplexPolicy()
        duplexPolicy.convergence = policy
        var summary = DuplexSummary(
            backend: "emulated", geometry: MemoryGeometry(frameSize: 4096, frameCount: bytes / 4096),
            thresholdFrames: 1024, policy: duplexPolicy)
        summary.outcome = failed ? .failed(.verifyMismatch) : .duplexed(.threshold)
        summary.passEndReason = .threshold
        var record = DuplexSummary.Blackout(
            durationMicroseconds: blackout, stopMicroseconds: stop, finalFrames: finalFrames,
            finalCopyMicroseconds: finalCopy, verifyMicroseconds: 0, predictedMicroseconds: predicted)
        record.finalHarvestMicroseconds = finalHarvest
        record.offCPUMicroseconds = offCPU
        summary.blackout = record
        summary.totalMicroseconds = total
        summary.passes = (1...passes).map {
            DuplexSummary.Pass(
                pass: $0, dirtyFrames: 1000, copiedFrames: 1000, durationMicroseconds: 1000,
                dirtyRateFramesPerSecond: 1e6, remainingDirtyFrames: 300)
        }
        summary.convergence.workloadSlowdown = slowdown
        summary.convergence.maximumThrottlePercent = cpuMaximumThrottle.max() ?? 0
        summary.convergence.cpuMaximumThrottlePercent = cpuMaximumThrottle
        return summary
    }
}
