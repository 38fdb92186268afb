import CMirrorLinux
import Foundation
import MirrorCore
import MirrorEmulation
import MirrordService

/// Everything one `mirrord-bench` run measured; its JSON keys are the ones `docs/performance.md`
/// and the issue tracker quote.
struct BenchReport: Encodable {
    var machine: MachineDescription
    var copy: [CopyResult]
    /// Microseconds to copy one 4 KiB frame chosen at random (the blackout floor's per-frame cost).
    var frameCopyMicroseconds: Double
    var harvest: [HarvestBench]
    var blackout: [BlackoutResult]
    /// The blackout's distribution (`--only tail`).
    var tail: TailResult?
    var store: StorePair?
    var storeWithMMU: StorePair?
    var scaling: [ScalingResult]
    var backends: [BackendResult]
    var backendDuplexes: [BackendDuplexResult]
    var hugePages: [HugePageResult]
    var convergence: [ConvergenceResult]
    /// The spare on another host (`--only remote`).
    var remote: RemoteResult?

    enum CodingKeys: String, CodingKey {
        case machine, copy, harvest, blackout, tail, store, scaling, backends, convergence, remote
        case backendDuplexes = "backend_duplex"
        case hugePages = "huge_pages"
        case frameCopyMicroseconds = "frame_copy_us"
        case storeWithMMU = "store_mmu"
    }

    /// The report as a table for people.
    var table: String {
        var out: [String] = []
        out.append(
            "mirrord-bench: \(machine.cores) cores, \(machine.memoryBytes >> 30) GiB, \(machine.kernel), load \(machine.loadAverage)"
        )
        if !copy.isEmpty {
            out.append("")
            out.append("full copy            memcpy GB/s   mirrord GB/s   copy_ratio (≥ 0.90)")
            for c in copy {
                out.append(
                    row(
                        [
                            ByteCount.format(c.memoryBytes), format(c.memcpyGBps, 2), format(c.fullCopyGBps, 2),
                            format(c.copyRatio, 2),
                        ], [20, 13, 14, 12]))
            }
        }
        if !harvest.isEmpty {
            out.append("")
            out.append("harvest (µs per GiB)  baseline   mirrord   harvest_ratio (≤ 1.25)")
            for h in harvest {
                out.append(
                    row(
                        [
                            "\(format(h.dirtyFraction * 100, 1)) % dirty", format(h.baselineMicrosecondsPerGiB, 1),
                            format(h.microsecondsPerGiB, 1), format(h.harvestRatio, 2),
                        ], [20, 10, 10, 12]))
            }
        }
        if !blackout.isEmpty {
            out.append("")
            out.append(
                "blackout (1 GiB)   frames   stop µs   copy µs   duration µs   floor µs   blackout_ratio (≤ 1.5)")
            for b in blackout {
                out.append(
                    row(
                        [
                            "", "\(b.frames)", "\(b.stopMicroseconds)", "\(b.finalCopyMicroseconds)",
                            "\(b.durationMicroseconds)", format(b.floorMicroseconds, 0), format(b.blackoutRatio, 2),
                        ], [16, 9, 10, 10, 14, 11, 10]))
            }
            out.append(
                "  per-frame copy cost in the floor: \(format(frameCopyMicroseconds, 3)) µs (random 4 KiB frames, same run)"
            )
        }
        if let tail { out += tailLines(tail) }
        if store != nil || storeWithMMU != nil {
            out.append("")
            out.append("store (ns, 1 CPU, hotset)   tracking off   tracking on   store_overhead (≤ 1.25)")
            for (name, pair) in [("frame bitmap", store), ("emulated MMU", storeWithMMU)] {
                guard let pair else { continue }
                out.append(
                    row(
                        [
                            name, format(pair.offNanoseconds, 1), format(pair.onNanoseconds, 1),
                            format(pair.overhead, 2),
                        ],
                        [26, 14, 14, 10]))
            }
            if let store, let armed = store.armedNanoseconds, let ratio = store.armedOverhead {
                out.append(
                    "  copy-on-write armed, nothing pending: \(format(armed, 1)) ns a store, \(format(ratio, 3))× tracking on"
                )
            }
        }
        if !scaling.isEmpty {
            out.append("")
            out.append("scaling        duplex ms   ms per GiB   passes   RSS beyond two modules")
            for s in scaling {
                out.append(
                    row(
                        [
                            ByteCount.format(s.memoryBytes), format(Double(s.totalMicroseconds) / 1000, 0),
                            format(s.microsecondsPerGiB / 1000, 1), "\(s.passes)",
                            "\(format(s.residentOverhead * 100, 2)) %",
                        ], [14, 10, 12, 9, 10]))
            }
        }
        if !backends.isEmpty {
            out.append("")
            out.append(
                "backends            memory   dirty     arm µs   first store ns   harvest µs   raw PAGEMAP_SCAN µs   uffd_harvest_ratio   look µs   raw walk µs   walk_ratio"
            )
            for b in backends {
                out.append(
                    row(
                        [
                            b.backend, ByteCount.format(b.memoryBytes), "\(format(b.dirtyFraction * 100, 1)) %",
                            format(b.armMicroseconds, 0),
                            format(b.firstStoreNanoseconds, 0),
                            b.harvestMicroseconds.map { format($0, 0) } ?? "failed: \(b.failure ?? "")",
                            b.baselineHarvestMicroseconds.map { format($0, 0) } ?? "",
                            b.uffdHarvestRatio.map { format($0, 2) } ?? "",
                            b.walkMicroseconds.map { format($0, 0) } ?? "",
                            b.baselineWalkMicroseconds.map { format($0, 0) } ?? "",
                            b.walkRatio.map { format($0, 2) } ?? "",
                        ],
                        [20, 9, 10, 9, 17, 13, 22, 21, 10, 14, 10]))
            }
            out.append(
                "1 GiB duplexes       result     passes   blackout µs   final frames   stop µs   final harvest µs   copy µs   µs/frame   beyond harvest µs/frame   total ms"
            )
            for d in backendDuplexes {
                out.append(
                    row(
                        [
                            d.backend, d.result, "\(d.passes)", "\(d.blackoutMicroseconds)", "\(d.finalFrames)",
                            "\(d.stopMicroseconds)",
                            "\(d.finalHarvestMicroseconds)", "\(d.finalCopyMicroseconds)",
                            format(d.perFrameMicroseconds, 2),
                            format(d.perFrameBeyondHarvestMicroseconds, 2),
                            format(Double(d.totalMicroseconds) / 1000, 0),
                        ],
                        [21, 11, 9, 14, 15, 10, 19, 10, 11, 26, 8]))
            }
            if !hugePages.isEmpty {
                out.append(
                    "uffd on anonymous memory   pages   huge MiB   arm µs   first store ns   walk after µs   walk later µs"
                )
                for h in hugePages {
                    out.append(
                        row(
                            [
                                "\(ByteCount.format(h.memoryBytes)), \(format(h.dirtyFraction * 100, 1)) % written",
                                h.pages,
                                format(h.hugeBytes / 1_048_576, 0), format(h.armMicroseconds, 0),
                                format(h.firstStoreNanoseconds, 0),
                                format(h.firstWalkMicroseconds, 0), format(h.laterWalkMicroseconds, 0),
                            ], [27, 8, 11, 9, 17, 16, 14]))
                }
            }
        }
        if !convergence.isEmpty {
            out.append("")
            out.append(
                "convergence (target 1 ms)   policy        end         passes  blackout µs  predicted µs  error  max throttle  slowdown  (passes)  total ms"
            )
            for c in convergence {
                out.append(
                    row(
                        [
                            "\(c.workload) \(ByteCount.format(c.memoryBytes))\(c.round > 1 ? " #\(c.round)" : "")",
                            c.policy, c.passEndReason ?? c.result, "\(c.passes)",
                            "\(c.blackoutMicroseconds)", c.predictedMicroseconds.map(String.init) ?? "-",
                            c.predictionError.map { "\(format($0 * 100, 0)) %" } ?? "-",
                            "\(format(c.maximumThrottlePercent, 0)) %",
                            c.workloadSlowdown.map { format($0, 2) } ?? "-",
                            c.passesSlowdown.map { format($0, 2) } ?? "-",
                            format(Double(c.totalMicroseconds) / 1000, 0),
                        ], [28, 14, 12, 8, 13, 14, 7, 14, 10, 10, 8]))
            }
            out += Self.roundComparisons(convergence)
            out += Self.convergenceChecks(convergence)
        }
        if let remote {
            out.append("")
            out += remote.lines
        }
        return out.joined(separator: "\n")
    }

    /// For each workload and size measured in rounds: `dirty-limit` against `throttle`, round by
    /// round, and the highest throttle any CPU but the first (the fast one) had under `dirty-limit`.
    static func roundComparisons(_ results: [ConvergenceResult]) -> [String] {
        var lines: [String] = []
        var seen = Set<String>()
        for r in results where r.round > 1 {
            let group = "\(r.workload) \(ByteCount.format(r.memoryBytes))"
            guard seen.insert(group).inserted else { continue }
            let rows = results.filter { "\($0.workload) \(ByteCount.format($0.memoryBytes))" == group }
            let rounds = Set(rows.map(\.round)).sorted()
            let pairs = rounds.compactMap { round -> (Double, Double)? in
                guard
                    let limited = rows.first(where: { $0.round == round && $0.policy == "dirty-limit" })?
                        .workloadSlowdown,
                    let throttled = rows.first(where: { $0.round == round && $0.policy == "throttle" })?
                        .workloadSlowdown
                else { return nil }
                return (limited, throttled)
            }
            let ahead = pairs.filter { $0.0 > $0.1 }.count
            let light =
                rows.filter { $0.policy == "dirty-limit" }.flatMap { $0.cpuMaximumThrottlePercent.dropFirst() }.max()
                ?? 0
            lines.append(
                "\(group): slowdown dirty-limit / throttle by round \(pairs.map { "\(format($0.0, 2)) / \(format($0.1, 2))" }.joined(separator: ", ")); "
                    + "dirty-limit ahead in \(ahead) of \(pairs.count); light CPUs' highest throttle under dirty-limit \(format(light, 0)) %"
            )
        }
        return lines
    }

    /// The bounded blackout's promises checked on the rows, so that a run says itself whether it
    /// kept them: every duplex `duplexed`; under the default policy a blackout of at most 1.5 × the
    /// target and a 1 GiB duplex of at most 3 s; every prediction within 30 % of the blackout
    /// taken. Each row that misses is named, with its blackout's time off the CPU (`off_cpu_us`).
    static func convergenceChecks(
        _ results: [ConvergenceResult], defaultPolicy: ConvergencePolicy = DuplexPolicy().convergence
    ) -> [String] {
        let name = { (r: ConvergenceResult) in
            "\(r.workload) \(ByteCount.format(r.memoryBytes))\(r.round > 1 ? " #\(r.round)" : "") \(r.policy)"
        }
        var lines: [String] = []
        let failed = results.filter { $0.result != "duplexed" }
        lines.append(
            "duplexed: \(results.count - failed.count) of \(results.count) rows"
                + (failed.isEmpty
                    ? "" : "; not: " + failed.map { "\(name($0)) (\($0.result))" }.joined(separator: ", ")))
        let defaults = results.filter { $0.policy == defaultPolicy.rawValue }
        if let longest = defaults.max(by: { $0.blackoutMicroseconds < $1.blackoutMicroseconds }) {
            let bound = longest.targetMicroseconds * 3 / 2
            let slowest = defaults.filter { $0.memoryBytes <= 1 << 30 }.map(\.totalMicroseconds).max()
            lines.append(
                "\(defaultPolicy.rawValue) (the default): longest blackout \(longest.blackoutMicroseconds) µs (\(name(longest)); "
                    + (bound > 0 ? "1.5 × the target: \(bound) µs" : "no target") + ")"
                    + (slowest.map { "; longest 1 GiB duplex \(format(Double($0) / 1e6, 2)) s (at most 3 s)" } ?? ""))
        }
        let predicted = results.filter { ($0.predictedMicroseconds ?? 0) > 0 }
        let missed = predicted.filter { r in
            let (p, t) = (Double(r.predictedMicroseconds!), Double(r.blackoutMicroseconds))
            return abs(p - t) > 0.3 * t
        }
        lines.append(
            "prediction within 30 % of the blackout taken: \(predicted.count - missed.count) of \(predicted.count) rows"
                + (predicted.count < results.count ? " (\(results.count - predicted.count) without a prediction)" : "")
                + (missed.isEmpty
                    ? ""
                    : "; missed: "
                        + missed.map {
                            "\(name($0)), \($0.finalFrames) frames, \($0.predictedMicroseconds!) µs predicted, \($0.blackoutMicroseconds) taken, \($0.offCPUMicroseconds) off CPU"
                        }.joined(separator: "; ")))
        return lines
    }

    /// The tail section: the distribution per size, then the five worst samples and where their
    /// time went.
    private func tailLines(_ tail: TailResult) -> [String] {
        var lines = [""]
        lines.append(
            "blackout tail (1 GiB, default workload)   samples   blackout_ratio p50 / p99 / p99.9 / max (p99.9 ≤ 1.5, max ≤ 2.0)   µs p50 / p99 / p99.9 / max   over 1.5× (cause)"
        )
        for d in tail.distributions {
            let over = d.attributed.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            lines.append(
                row(
                    [
                        d.targetFrames.map { "  ~\($0) frames" } ?? "  all", "\(d.count)",
                        [d.ratio.p50, d.ratio.p99, d.ratio.p999, d.ratio.max].map { format($0, 2) }.joined(
                            separator: " / "),
                        [
                            d.durationMicroseconds.p50, d.durationMicroseconds.p99, d.durationMicroseconds.p999,
                            d.durationMicroseconds.max,
                        ].map { format($0, 0) }.joined(separator: " / "),
                        over.isEmpty ? "none" : over,
                    ], [42, 10, 70, 30, 20]))
        }
        lines.append(
            "  \(format(tail.seconds, 0)) s; host steal over the run: "
                + (tail.hostStealShare.map { "\(format($0 * 100, 2)) % of the CPUs' time" } ?? "unknown"))
        lines.append(
            "  worst five   frames   µs     floor µs   ratio   stop   harvest   copy   engine run/wait/host µs   helper wake/run/wait/lost µs   again µs   ours / other task µs   steal µs   cause"
        )
        func text(_ value: Double?) -> String { value.map { format($0, 0) } ?? "-" }
        func systemTask(_ sample: TailSample) -> String {
            guard let name = sample.busiestSystemTask else { return "-" }
            return "\(name) \(text(sample.busiestSystemTaskRunMicroseconds))"
        }
        for s in tail.worst {
            lines.append(
                row(
                    [
                        "", "\(s.finalFrames)", "\(s.durationMicroseconds)", format(s.floorMicroseconds, 0),
                        format(s.blackoutRatio, 2), "\(s.stopMicroseconds)", "\(s.finalHarvestMicroseconds)",
                        "\(s.finalCopyMicroseconds)",
                        [s.callerRunMicroseconds, s.callerWaitMicroseconds, s.callerHostMicroseconds].map(text)
                            .joined(separator: "/"),
                        s.helperShared
                            ? [
                                s.helperWakeMicroseconds, s.helperRunMicroseconds, s.helperWaitMicroseconds,
                                s.helperLostMicroseconds,
                            ]
                            .map(text).joined(separator: "/") : "not shared",
                        format(s.againMicroseconds, 0),
                        "\(format(s.othersRunMicroseconds, 0)) / \(systemTask(s))",
                        text(s.stealMicroseconds), s.cause.rawValue,
                    ], [13, 9, 7, 11, 8, 7, 10, 7, 26, 31, 11, 26, 11, 12]))
        }
        return lines
    }

    private func row(_ cells: [String], _ widths: [Int]) -> String {
        zip(cells, widths).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
    }
}

/// glibc `memcpy` against mirrord's full copy, on modules of one size.
struct CopyResult: Encodable {
    let memoryBytes: Int
    let memcpyGBps: Double
    let fullCopyGBps: Double
    let copyRatio: Double

    init(memoryBytes: Int, memcpyGBps: Double, fullCopyGBps: Double) {
        self.memoryBytes = memoryBytes
        self.memcpyGBps = memcpyGBps
        self.fullCopyGBps = fullCopyGBps
        copyRatio = fullCopyGBps / memcpyGBps
    }

    enum CodingKeys: String, CodingKey {
        case memoryBytes = "memory_bytes"
        case memcpyGBps = "memcpy_gbps"
        case fullCopyGBps = "full_copy_gbps"
        case copyRatio = "copy_ratio"
    }

}

/// mirrord's harvest against a plain C get-and-clear, at one dirty fraction.
struct HarvestBench: Encodable {
    let dirtyFraction: Double
    let microsecondsPerGiB: Double
    let baselineMicrosecondsPerGiB: Double
    let harvestRatio: Double

    init(dirtyFraction: Double, microsecondsPerGiB: Double, baselineMicrosecondsPerGiB: Double) {
        self.dirtyFraction = dirtyFraction
        self.microsecondsPerGiB = microsecondsPerGiB
        self.baselineMicrosecondsPerGiB = baselineMicrosecondsPerGiB
        harvestRatio = microsecondsPerGiB / baselineMicrosecondsPerGiB
    }

    enum CodingKeys: String, CodingKey {
        case dirtyFraction = "dirty_fraction"
        case microsecondsPerGiB = "us_per_gib"
        case baselineMicrosecondsPerGiB = "baseline_us_per_gib"
        case harvestRatio = "harvest_ratio"
    }

}

/// One blackout against its floor: the measured stop plus the frames at the per-frame copy cost.
struct BlackoutResult: Encodable {
    let frames: Int
    let durationMicroseconds: UInt64
    let stopMicroseconds: UInt64
    let finalCopyMicroseconds: UInt64
    let floorMicroseconds: Double
    let blackoutRatio: Double

    init(record: DuplexSummary.Blackout, frameCopyMicroseconds: Double) {
        frames = record.finalFrames
        durationMicroseconds = record.durationMicroseconds
        stopMicroseconds = record.stopMicroseconds
        finalCopyMicroseconds = record.finalCopyMicroseconds
        floorMicroseconds = Double(record.stopMicroseconds) + Double(record.finalFrames) * frameCopyMicroseconds
        blackoutRatio = Double(durationMicroseconds) / max(1, floorMicroseconds)
    }

    enum CodingKeys: String, CodingKey {
        case frames
        case durationMicroseconds = "duration_us"
        case stopMicroseconds = "stop_us"
        case finalCopyMicroseconds = "final_copy_us"
        case floorMicroseconds = "floor_us"
        case blackoutRatio = "blackout_ratio"
    }

}

/// Nanoseconds per store with tracking off and on: the medians of alternating rounds, and the
/// median of each round's ratio.
struct StorePair: Encodable {
    /// Rounds of tracking off, then on.
    static let rounds = 5
    let offNanoseconds: Double
    let onNanoseconds: Double
    let overhead: Double
    /// Tracking on with copy-on-write staging armed but nothing pending (each store checks its
    /// frame), and its cost over tracking on alone, round by round (nil without copy-on-write).
    let armedNanoseconds: Double?
    let armedOverhead: Double?

    init(off: [Double], on: [Double], armed: [Double] = []) {
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        offNanoseconds = median(off)
        onNanoseconds = median(on)
        overhead = median(zip(on, off).map { $0 / $1 })
        armedNanoseconds = armed.isEmpty ? nil : median(armed)
        armedOverhead = armed.isEmpty ? nil : median(zip(armed, on).map { $0 / $1 })
    }

    enum CodingKeys: String, CodingKey {
        case offNanoseconds = "off_ns"
        case onNanoseconds = "on_ns"
        case overhead = "store_overhead"
        case armedNanoseconds = "cow_armed_ns"
        case armedOverhead = "cow_armed_overhead"
    }

}

/// One duplex of the default workload shape at one size.
struct ScalingResult: Encodable {
    let memoryBytes: Int
    let totalMicroseconds: UInt64
    let passes: Int
    let residentBytes: Int
    let microsecondsPerGiB: Double
    /// Memory beyond the two modules, as a share of them.
    let residentOverhead: Double

    init(memoryBytes: Int, summary: DuplexSummary, residentBytes: Int) {
        self.memoryBytes = memoryBytes
        totalMicroseconds = summary.totalMicroseconds
        passes = summary.passes.count
        self.residentBytes = residentBytes
        microsecondsPerGiB = Double(totalMicroseconds) / (Double(memoryBytes) / Double(1 << 30))
        residentOverhead = Double(residentBytes - 2 * memoryBytes) / Double(2 * memoryBytes)
    }

    enum CodingKeys: String, CodingKey {
        case memoryBytes = "memory_bytes"
        case totalMicroseconds = "total_us"
        case passes
        case residentBytes = "rss_bytes"
        case microsecondsPerGiB = "us_per_gib"
        case residentOverhead = "rss_overhead"
    }

}

/// The machine a benchmark ran on, since these machines are shared.
struct MachineDescription: Encodable {
    var cores: Int
    var memoryBytes: UInt64
    var kernel: String
    var loadAverage: String

    enum CodingKeys: String, CodingKey {
        case cores, kernel
        case memoryBytes = "memory_bytes"
        case loadAverage = "load_average"
    }

    static var current: MachineDescription {
        let info = ProcessInfo.processInfo
        let load =
            (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        let kernel =
            (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? info.operatingSystemVersionString
        return MachineDescription(
            cores: info.activeProcessorCount, memoryBytes: info.physicalMemory, kernel: "Linux \(kernel)",
            loadAverage: load)
    }
}

/// One tracking backend's costs at one size and dirty fraction.
struct BackendResult: Encodable {
    let backend: String
    let memoryBytes: Int
    let dirtyFraction: Double
    let armMicroseconds: Double
    let firstStoreNanoseconds: Double
    let harvestMicroseconds: Double?
    /// `uffd` only: the raw C `PAGEMAP_SCAN` get-and-clear of the same pages, same run.
    let baselineHarvestMicroseconds: Double?
    /// `uffd` only: the blackout's look (a get-only harvest of every frame through the machine),
    /// and the same walk by one raw C loop.
    let walkMicroseconds: Double?
    let baselineWalkMicroseconds: Double?
    let failure: String?

    /// The look ÷ the raw walk: what mirrord adds to the kernel's walk in the blackout.
    var walkRatio: Double? {
        guard let walkMicroseconds, let baselineWalkMicroseconds, baselineWalkMicroseconds > 0 else { return nil }
        return walkMicroseconds / baselineWalkMicroseconds
    }

    /// mirrord's `uffd` harvest ÷ the raw `PAGEMAP_SCAN` (target ≤ 1.2 at 1 and 10 %, ≤ 1.5 at 0.1 %).
    var uffdHarvestRatio: Double? {
        guard let harvestMicroseconds, let baselineHarvestMicroseconds, baselineHarvestMicroseconds > 0 else {
            return nil
        }
        return harvestMicroseconds / baselineHarvestMicroseconds
    }

    init(backend: String, memoryBytes: Int, dirtyFraction: Double, costs: MachineBenchmarks.BackendCosts) {
        self.backend = backend
        self.memoryBytes = memoryBytes
        self.dirtyFraction = dirtyFraction
        armMicroseconds = costs.armMicroseconds
        firstStoreNanoseconds = costs.firstStoreNanoseconds
        harvestMicroseconds = costs.harvestMicroseconds
        baselineHarvestMicroseconds = costs.baselineHarvestMicroseconds
        walkMicroseconds = costs.walkMicroseconds
        baselineWalkMicroseconds = costs.baselineWalkMicroseconds
        failure = costs.failure
    }

    enum CodingKeys: String, CodingKey {
        case backend, failure
        case memoryBytes = "memory_bytes"
        case dirtyFraction = "dirty_fraction"
        case armMicroseconds = "arm_us"
        case firstStoreNanoseconds = "first_store_ns"
        case harvestMicroseconds = "harvest_us"
        case baselineHarvestMicroseconds = "baseline_harvest_us"
        case uffdHarvestRatio = "uffd_harvest_ratio"
        case walkMicroseconds = "walk_us"
        case baselineWalkMicroseconds = "baseline_walk_us"
        case walkRatio = "walk_ratio"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(backend, forKey: .backend)
        try c.encode(memoryBytes, forKey: .memoryBytes)
        try c.encode(dirtyFraction, forKey: .dirtyFraction)
        try c.encode(armMicroseconds, forKey: .armMicroseconds)
        try c.encode(firstStoreNanoseconds, forKey: .firstStoreNanoseconds)
        try c.encodeIfPresent(harvestMicroseconds, forKey: .harvestMicroseconds)
        try c.encodeIfPresent(baselineHarvestMicroseconds, forKey: .baselineHarvestMicroseconds)
        try c.encodeIfPresent(uffdHarvestRatio, forKey: .uffdHarvestRatio)
        try c.encodeIfPresent(walkMicroseconds, forKey: .walkMicroseconds)
        try c.encodeIfPresent(baselineWalkMicroseconds, forKey: .baselineWalkMicroseconds)
        try c.encodeIfPresent(walkRatio, forKey: .walkRatio)
        try c.encodeIfPresent(failure, forKey: .failure)
    }
}

/// One default duplex on one backend.
struct BackendDuplexResult: Encodable {
    let backend: String
    let result: String
    let passes: Int
    let blackoutMicroseconds: UInt64
    let finalFrames: Int
    let totalMicroseconds: UInt64
    /// The blackout's parts: the stop, the final harvest (for a real MMU a walk of every page),
    /// the copy of the final frames.
    let stopMicroseconds: UInt64
    let finalHarvestMicroseconds: UInt64
    let finalCopyMicroseconds: UInt64
    /// The blackout per final frame, in microseconds ...
    let perFrameMicroseconds: Double
    /// ... and the same without the final harvest: what the blackout costs beyond the tracking's walk.
    let perFrameBeyondHarvestMicroseconds: Double

    init(summary: DuplexSummary) {
        backend = summary.backend
        result = summary.outcome.result
        passes = summary.passes.count
        blackoutMicroseconds = summary.blackout?.durationMicroseconds ?? 0
        finalFrames = summary.blackout?.finalFrames ?? 0
        totalMicroseconds = summary.totalMicroseconds
        stopMicroseconds = summary.blackout?.stopMicroseconds ?? 0
        finalHarvestMicroseconds = summary.blackout?.finalHarvestMicroseconds ?? 0
        finalCopyMicroseconds = summary.blackout?.finalCopyMicroseconds ?? 0
        let frames = Double(max(1, finalFrames))
        perFrameMicroseconds = Double(blackoutMicroseconds) / frames
        perFrameBeyondHarvestMicroseconds =
            Double(blackoutMicroseconds - min(blackoutMicroseconds, finalHarvestMicroseconds)) / frames
    }

    enum CodingKeys: String, CodingKey {
        case backend, result, passes
        case blackoutMicroseconds = "blackout_us"
        case finalFrames = "final_frames"
        case totalMicroseconds = "total_us"
        case stopMicroseconds = "stop_us"
        case finalHarvestMicroseconds = "final_harvest_us"
        case finalCopyMicroseconds = "final_copy_us"
        case perFrameMicroseconds = "blackout_per_frame_us"
        case perFrameBeyondHarvestMicroseconds = "blackout_per_frame_beyond_harvest_us"
    }
}

/// What transparent huge pages do to userfaultfd write-protect tracking (anonymous memory).
struct HugePageResult: Encodable {
    let memoryBytes: Int
    let dirtyFraction: Double
    let pages: String
    let hugeBytes: Double
    let armMicroseconds: Double
    let firstStoreNanoseconds: Double
    let firstWalkMicroseconds: Double
    let laterWalkMicroseconds: Double

    init(memoryBytes: Int, dirtyFraction: Double, huge: Bool, costs: mirrord_thp_costs) {
        self.memoryBytes = memoryBytes
        self.dirtyFraction = dirtyFraction
        pages = huge ? "huge" : "4KiB"
        hugeBytes = costs.huge_bytes
        armMicroseconds = costs.arm_us
        firstStoreNanoseconds = costs.first_store_ns
        firstWalkMicroseconds = costs.first_walk_us
        laterWalkMicroseconds = costs.later_walk_us
    }

    enum CodingKeys: String, CodingKey {
        case pages
        case memoryBytes = "memory_bytes"
        case dirtyFraction = "dirty_fraction"
        case hugeBytes = "huge_bytes"
        case armMicroseconds = "arm_us"
        case firstStoreNanoseconds = "first_store_ns"
        case firstWalkMicroseconds = "first_walk_us"
        case laterWalkMicroseconds = "later_walk_us"
    }
}
