import MirrorCore
import MirrordConfig
import Testing

@testable import MirrorBench

/// The convergence section's own verdicts on its rows (`convergenceChecks`, `roundComparisons`)
/// and the workloads it measures: what a run says about itself must follow from its rows.
@Suite("Convergence bench: the checks on the rows, the workloads")
struct ConvergenceCheckTests {
    /// A row of the section.
    func row(
        _ workload: String, _ policy: ConvergencePolicy, round: Int = 1, failed: Bool = false, blackout: UInt64 = 800,
        predicted: UInt64? = 760, total: UInt64 = 1_500_000, slowdown: Double? = 1.1,
        cpuMaximumThrottle: [Double] = [40, 0, 0, 0]
    ) -> ConvergenceResult {
        ConvergenceResult(
            workload: workload, memoryBytes: 1 << 30, round: round,
            summary: SummaryFixture.summary(
                policy: policy, failed: failed, blackout: blackout, predicted: predicted, total: total,
                slowdown: slowdown, cpuMaximumThrottle: cpuMaximumThrottle))
    }

    /// Every row duplexed or named; the default policy's longest blackout against 1.5 × the
    /// target and its slowest 1 GiB duplex; each prediction within 30 % of the blackout or named.
    @Test("the checks name the row that failed and the prediction that missed")
    func checks() {
        let rows = [
            row("uniform", .none),
            row("uniform", .dirtyLimit, blackout: 1400, predicted: 900, total: 2_500_000),
            row("uniform", .throttle, failed: true, blackout: 900, predicted: nil),
        ]
        #expect(
            BenchReport.convergenceChecks(rows, defaultPolicy: .dirtyLimit) == [
                "duplexed: 2 of 3 rows; not: uniform 1GiB throttle (failed)",
                "dirty-limit (the default): longest blackout 1400 µs (uniform 1GiB dirty-limit; 1.5 × the target: 1500 µs); longest 1 GiB duplex 2.50 s (at most 3 s)",
                "prediction within 30 % of the blackout taken: 1 of 2 rows (1 without a prediction); missed: uniform 1GiB dirty-limit, 300 frames, 900 µs predicted, 1400 taken, 0 off CPU",
            ])
    }

    /// A clean run says so in three short lines, no row named.
    @Test("a run that kept every promise names no row")
    func clean() {
        let rows = [row("hotset", .none), row("hotset", .throttle), row("hotset", .dirtyLimit, blackout: 900)]
        let lines = BenchReport.convergenceChecks(rows, defaultPolicy: .dirtyLimit)
        #expect(lines.count == 3)
        #expect(lines[0] == "duplexed: 3 of 3 rows")
        #expect(lines[1].hasPrefix("dirty-limit (the default): longest blackout 900 µs (hotset 1GiB dirty-limit;"))
        #expect(lines[2] == "prediction within 30 % of the blackout taken: 3 of 3 rows")
    }

    /// Rounds pair dirty-limit with throttle by round; the light CPUs are all but the first.
    @Test("rounds compare dirty-limit with throttle, and the light CPUs' highest throttle")
    func rounds() {
        let rows = [
            row("uniform", .none),
            row("mixed", .none),
            row("mixed", .throttle, slowdown: 1.3),
            row("mixed", .dirtyLimit, slowdown: 1.1, cpuMaximumThrottle: [40, 0, 5, 0]),
            row("mixed", .dirtyLimit, round: 2, slowdown: 1.4, cpuMaximumThrottle: [50, 2, 0, 0]),
            row("mixed", .throttle, round: 2, slowdown: 1.2),
        ]
        #expect(
            BenchReport.roundComparisons(rows) == [
                "mixed 1GiB: slowdown dirty-limit / throttle by round 1.10 / 1.30, 1.40 / 1.20; dirty-limit ahead in 1 of 2; light CPUs' highest throttle under dirty-limit 5 %"
            ])
        #expect(BenchReport.roundComparisons(rows.filter { $0.round == 1 }).isEmpty, "one round: nothing to compare")
    }

    /// The mixed workload keeps its light CPUs on the same 64 frames at every size, without churn.
    @Test("the mixed workload: one fast CPU everywhere, three light ones on 64 frames")
    func mixedWorkload() {
        for bytes in [1 << 30, 4 << 30] {
            var workload = MachineOptions.Workload()
            ConvergenceBench.mixed(&workload, bytes: bytes)
            #expect(workload.cpus == 4)
            #expect(workload.cpuPatterns == [.uniform, .hotset, .hotset, .hotset])
            #expect(workload.cpuRates.count == 4)
            #expect(workload.cpuRates.first == .limited(bytesPerSecond: 256 << 20))
            #expect(workload.hotShare == 1.0 && workload.churn == 0)
            #expect((workload.hotFraction * Double(bytes / 4096)).rounded() == Double(ConvergenceBench.lightHotFrames))
        }
    }

    /// The trace workload joins the others only when there is a trace.
    @Test("the workloads: four, and the trace when one is given")
    func workloads() {
        #expect(ConvergenceBench.workloads(trace: nil).map(\.name) == ["uniform", "hotset", "sequential", "mixed"])
        let withTrace = ConvergenceBench.workloads(trace: "/tmp/x.lackey")
        #expect(withTrace.map(\.name).last == "trace")
        #expect(withTrace.first { $0.name == "mixed" }?.rounds == 3)
        var workload = MachineOptions.Workload()
        withTrace.last?.configure(&workload, 1 << 30)
        #expect(workload.pattern == .trace && workload.tracePath == "/tmp/x.lackey" && workload.rate == .unlimited)
    }
}
