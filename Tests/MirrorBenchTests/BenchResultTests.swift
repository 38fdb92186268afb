import MirrorCore
import Testing

@testable import MirrorBench

/// The report's ratios: each figure of `mirrord-bench` is ours over a baseline of the same run,
/// and the JSON the docs quote carries them; these hold the arithmetic to known figures.
@Suite("Bench results: the ratios to same-run baselines")
struct BenchResultTests {
    /// Equal but for the last bits of a `Double`.
    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)) }

    /// The full copy against `memcpy`, the harvest against the C get-and-clear: ours ÷ baseline.
    @Test("copy_ratio and harvest_ratio are ours over the baseline")
    func copyAndHarvest() {
        let copy = CopyResult(memoryBytes: 1 << 30, memcpyGBps: 10, fullCopyGBps: 9)
        #expect(close(copy.copyRatio, 0.9))
        let harvest = HarvestBench(dirtyFraction: 0.01, microsecondsPerGiB: 300, baselineMicrosecondsPerGiB: 200)
        #expect(close(harvest.harvestRatio, 1.5))
    }

    /// The floor is the stop plus each final frame at the random-frame copy cost; a zero floor
    /// divides by 1 µs rather than by zero.
    @Test("the blackout's floor is the stop plus the frames at the per-frame copy cost")
    func blackoutFloor() {
        let record = DuplexSummary.Blackout(
            durationMicroseconds: 450, stopMicroseconds: 100, finalFrames: 256, finalCopyMicroseconds: 300,
            verifyMicroseconds: 0)
        let result = BlackoutResult(record: record, frameCopyMicroseconds: 1.0)
        #expect(result.frames == 256)
        #expect(close(result.floorMicroseconds, 356))
        #expect(close(result.blackoutRatio, 450.0 / 356))
        let empty = DuplexSummary.Blackout(
            durationMicroseconds: 3, stopMicroseconds: 0, finalFrames: 0, finalCopyMicroseconds: 0,
            verifyMicroseconds: 0)
        #expect(close(BlackoutResult(record: empty, frameCopyMicroseconds: 1.0).blackoutRatio, 3))
    }

    /// The overhead is the median of each round's ratio, not the ratio of the medians: a round
    /// where the host stalled both sides must not skew it.
    @Test("store_overhead is the median of the per-round ratios")
    func storeOverhead() {
        let pair = StorePair(off: [10, 20, 10, 10, 40], on: [12, 22, 13, 11, 44])
        #expect(pair.offNanoseconds == 10)
        #expect(pair.onNanoseconds == 13)
        // Ratios 1.2, 1.1, 1.3, 1.1, 1.1: the median is 1.1, where 13 / 10 would say 1.3.
        #expect(close(pair.overhead, 1.1))
    }

    /// Duplex time per GiB, and the resident memory beyond the two modules as a share of them.
    @Test("scaling: microseconds per GiB and the resident overhead")
    func scaling() {
        let summary = SummaryFixture.summary(bytes: 2 << 30, total: 3_000_000, passes: 5)
        let result = ScalingResult(memoryBytes: 2 << 30, summary: summary, residentBytes: (4 << 30) + (4 << 20))
        #expect(result.passes == 5)
        #expect(close(result.microsecondsPerGiB, 1_500_000))
        #expect(close(result.residentOverhead, Double(4 << 20) / Double(4 << 30)))
    }

    /// The blackout per final frame, and the same without the final harvest (never below 0
    /// when a harvest took longer than the blackout recorded).
    @Test("a backend's duplex: the blackout per frame, with and without the final harvest")
    func backendDuplex() {
        let result = BackendDuplexResult(summary: SummaryFixture.summary(blackout: 800, finalFrames: 400))
        #expect(result.result == "duplexed")
        #expect(close(result.perFrameMicroseconds, 2))
        #expect(close(result.perFrameBeyondHarvestMicroseconds, 750.0 / 400))
        let odd = BackendDuplexResult(summary: SummaryFixture.summary(blackout: 40, finalFrames: 0, finalHarvest: 50))
        #expect(odd.perFrameMicroseconds == 40, "no final frame: per one")
        #expect(odd.perFrameBeyondHarvestMicroseconds == 0)
    }

    /// The `uffd` ratios exist only with a baseline to divide by.
    @Test("the uffd harvest and walk ratios need their baselines")
    func backendRatios() {
        var costs = MachineBenchmarks.BackendCosts(
            armMicroseconds: 10, firstStoreNanoseconds: 900, harvestMicroseconds: 120, baselineHarvestMicroseconds: 100,
            walkMicroseconds: 30)
        let result = BackendResult(backend: "uffd", memoryBytes: 1 << 30, dirtyFraction: 0.01, costs: costs)
        #expect(result.uffdHarvestRatio.map { close($0, 1.2) } == true)
        #expect(result.walkRatio == nil, "no raw walk measured")
        costs.baselineHarvestMicroseconds = 0
        #expect(
            BackendResult(backend: "uffd", memoryBytes: 1 << 30, dirtyFraction: 0.01, costs: costs).uffdHarvestRatio
                == nil)
    }

    /// How far a prediction missed: blackout ÷ predicted − 1, none without a prediction.
    @Test("a convergence row's prediction error")
    func predictionError() {
        let row = ConvergenceResult(
            workload: "uniform", memoryBytes: 1 << 30, summary: SummaryFixture.summary(blackout: 1200, predicted: 1000))
        #expect(row.predictionError.map { close($0, 0.2) } == true)
        #expect(row.policy == DuplexPolicy().convergence.rawValue)
        #expect(row.targetMicroseconds == 1000)
        let none = ConvergenceResult(
            workload: "uniform", memoryBytes: 1 << 30, summary: SummaryFixture.summary(predicted: 0))
        #expect(none.predictionError == nil)
    }

    /// The table names the bench by its executable and puts a copy row's ratio in its column.
    @Test("the table's title and a copy row")
    func table() {
        let report = BenchReport(
            machine: MachineDescription(cores: 2, memoryBytes: 8 << 30, kernel: "Linux 6.18", loadAverage: "0.5"),
            copy: [CopyResult(memoryBytes: 1 << 30, memcpyGBps: 10, fullCopyGBps: 9.5)], frameCopyMicroseconds: 1,
            harvest: [], blackout: [], store: nil, storeWithMMU: nil, scaling: [], backends: [], backendDuplexes: [],
            hugePages: [], convergence: [])
        let lines = report.table.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "mirrord-bench: 2 cores, 8 GiB, Linux 6.18, load 0.5")
        #expect(lines.contains { $0.hasPrefix("1GiB") && $0.contains("0.95") })
    }

    @Test("the remote section: full_copy_ratio is nbdcopy's time over ours, commit_ratio a commit over the link's time")
    func remoteRatios() {
        let result = RemoteResult(
            export: "test", memoryBytes: 1 << 30, nbdcopyMicroseconds: 900_000, fullCopyMicroseconds: 1_000_000,
            epochs: [
                .init(
                    applier: "standby", frames: 256, commits: 50, p50Microseconds: 2_000, p99Microseconds: 5_000,
                    linkMicroseconds: 500)
            ],
            takeoverMicroseconds: 16_000, takeoverFrames: 256, takeoverOverLink: false)
        #expect(result.fullCopyRatio == 0.9)
        #expect(result.epochs[0].commitRatio == 4)
        #expect(result.lines[1].hasSuffix("full_copy_ratio 0.90 (≥ 0.80)"))
        #expect(result.lines.last == "  takeover: 16000 µs for 256 frames replayed from the file (≤ 100 ms)")
    }
}
