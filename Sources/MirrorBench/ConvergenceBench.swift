import Foundation
import MirrorCore
import MirrorEmulation
import MirrordConfig
import MirrordService

/// `mirrord-bench --only convergence`: the blackout at any write rate. Workloads that dirty memory
/// faster than a pass copies it, at two sizes, each duplexed under every convergence policy on one
/// machine (the three duplexes follow each other on the same running workload), with the default
/// blackout target: the blackout and its prediction, the duplex time, the passes, the highest
/// throttle and what it cost the workload.
struct ConvergenceBench {
    /// A workload of the section.
    struct Workload {
        var name: String
        /// How many times the policies that act (`throttle`, `dirty-limit`) are measured, in turn,
        /// on one machine: repeated where their difference is the point and one duplex says more
        /// about the host than about them.
        var rounds = 1
        /// Sets the workload for modules of the given size in bytes.
        var configure: (inout MachineOptions.Workload, Int) -> Void
    }

    /// Uniform, hotset and sequential at unlimited rate; the mixed workload (a loader writing
    /// everywhere at 256 MiB/s beside three CPUs rewriting a small hot set at 64 MiB/s each),
    /// three rounds; and a lackey trace, when there is one, at unlimited rate.
    static func workloads(trace: String?) -> [Workload] {
        var list: [Workload] = [
            .init(name: "uniform") { w, _ in
                w.pattern = .uniform
                w.rate = .unlimited
            },
            .init(name: "hotset") { w, _ in
                w.pattern = .hotset
                w.rate = .unlimited
            },
            .init(name: "sequential") { w, _ in
                w.pattern = .sequential
                w.rate = .unlimited
            },
            .init(name: "mixed", rounds: 3, configure: mixed),
        ]
        if let trace {
            list.append(
                .init(name: "trace") { w, _ in
                    w.pattern = .trace
                    w.tracePath = trace
                    w.rate = .unlimited
                })
        }
        return list
    }

    /// The frames the light CPUs of the mixed workload rewrite, whatever the memory size: a
    /// working set that dirties little however fast it is stored to. (A share of memory would
    /// not be light at every size: 0.1 % of 4 GiB is 1,048 frames, rewritten every millisecond,
    /// more than the blackout target's budget there, and dirty-limit rightly slowed them.)
    static let lightHotFrames = 64

    /// One CPU writing hard and everywhere, three writing lightly over a small hot set: the workload
    /// dirty-limit is for. Without page-table churn: with it, the fast CPU's pace swung for seconds
    /// at random (copies on write after the emulated forks, most likely), and the workload's rate
    /// just before a duplex, the base of its slowdown, was over 10 % off its usual in 9 of 98
    /// rows (55 % to 111 % of it; 0 of 28 without), which swamps what the policies cost. Every
    /// other workload keeps the default churn.
    static func mixed(_ workload: inout MachineOptions.Workload, bytes: Int) {
        workload.cpus = 4
        workload.cpuPatterns = [.uniform, .hotset, .hotset, .hotset]
        workload.cpuRates =
            [.limited(bytesPerSecond: 256 << 20)] + Array(repeating: .limited(bytesPerSecond: 64 << 20), count: 3)
        workload.hotFraction = Double(lightHotFrames * 4096) / Double(bytes)
        workload.hotShare = 1.0
        workload.churn = 0
    }

    /// The duplexes of `workload` at `bytes`: one per policy, `none` first, then the policies that
    /// act for each further round, their order swapped every round so that neither always runs
    /// on the fresher machine.
    static func measure(_ workload: Workload, bytes: Int) throws -> [ConvergenceResult] {
        var config = MirrordConfiguration()
        config.machine.memorySize = bytes
        workload.configure(&config.machine.workload, bytes)
        let machine = try MachineFactory.makeMachine(config)
        defer { machine.shutdown() }
        try machine.start()
        var order: [(ConvergencePolicy, Int)] = [(.none, 1), (.throttle, 1), (.dirtyLimit, 1)]
        for round in stride(from: 2, through: workload.rounds, by: 1) {
            order += (round % 2 == 0 ? [ConvergencePolicy.dirtyLimit, .throttle] : [.throttle, .dirtyLimit]).map {
                ($0, round)
            }
        }
        return order.map { policy, round in
            var duplexPolicy = config.policy
            duplexPolicy.convergence = policy
            let summary = DuplexEngine(hardware: machine, policy: duplexPolicy).run()
            machine.setLockstep(false)
            return ConvergenceResult(workload: workload.name, memoryBytes: bytes, round: round, summary: summary)
        }
    }

    /// A lackey trace of `xz -6` compressing 40 KB of this executable: five million stores over
    /// three thousand pages. Made once (about a minute and a half under valgrind) and kept in the
    /// temporary directory; nil when valgrind or xz is missing.
    static func xzTrace() -> String? {
        let path = NSTemporaryDirectory() + "mirrord-bench-xz6.lackey"
        if FileManager.default.fileExists(atPath: path) { return path }
        let script = """
            command -v valgrind >/dev/null && command -v xz >/dev/null || exit 1
            input=$(mktemp) && head -c 40000 "$0" >"$input" &&
            valgrind --tool=lackey --trace-mem=yes --log-fd=3 xz -6 -c "$input" 3>&1 >/dev/null | grep -E '^ [SM] ' >"$1.part" &&
            mv "$1.part" "$1"; status=$?; rm -f "$input"; exit $status
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, CommandLine.arguments[0], path]
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return nil
        }
        return process.terminationStatus == 0 ? path : nil
    }
}

/// One duplex of the convergence section.
struct ConvergenceResult: Encodable {
    let workload: String
    let memoryBytes: Int
    /// Which round of the workload's (1 for `none` and for workloads measured once).
    let round: Int
    let policy: String
    let result: String
    let passEndReason: String?
    let blackoutMicroseconds: UInt64
    let predictedMicroseconds: UInt64?
    /// `blackout ÷ predicted − 1`: how far the prediction missed.
    let predictionError: Double?
    let finalFrames: Int
    let stopMicroseconds: UInt64
    let finalHarvestMicroseconds: UInt64
    let finalCopyMicroseconds: UInt64
    /// The lockstep switch and the lifting of the throttles, up to the resume.
    let resumeMicroseconds: UInt64
    /// How much of the blackout, less the stop, mirrord's threads did not run (the host's steal
    /// time, or another thread; ``DuplexSummary/Blackout/offCPUMicroseconds``): what a row over
    /// the target on a busy host is made of.
    let offCPUMicroseconds: UInt64
    let totalMicroseconds: UInt64
    /// The blackout target the duplex ran with (0: off).
    let targetMicroseconds: UInt64
    let passes: Int
    let maximumThrottlePercent: Double
    /// Each CPU's highest throttle: the light CPUs of the mixed workload stay at 0 under
    /// dirty-limit.
    let cpuMaximumThrottlePercent: [Double]
    let throttledMicroseconds: UInt64
    /// The workload's stores a second just before tracking started: the base of the slowdowns.
    let baselineStoresPerSecond: Double?
    let workloadSlowdown: Double?
    let cpuSlowdown: [Double]
    /// The slowdown in the passes alone, where the policies differ.
    let passesSlowdown: Double?
    let passesCPUSlowdown: [Double]
    let stopExceedsTarget: Bool

    init(workload: String, memoryBytes: Int, round: Int = 1, summary: DuplexSummary) {
        self.workload = workload
        self.memoryBytes = memoryBytes
        self.round = round
        policy = summary.convergence.policy.rawValue
        result = summary.outcome.result
        passEndReason = summary.passEndReason?.rawValue
        let blackout = summary.blackout?.durationMicroseconds ?? 0
        let predicted = summary.blackout?.predictedMicroseconds
        blackoutMicroseconds = blackout
        predictedMicroseconds = predicted
        predictionError = predicted.flatMap { $0 > 0 ? Double(blackout) / Double($0) - 1 : nil }
        finalFrames = summary.blackout?.finalFrames ?? 0
        stopMicroseconds = summary.blackout?.stopMicroseconds ?? 0
        finalHarvestMicroseconds = summary.blackout?.finalHarvestMicroseconds ?? 0
        finalCopyMicroseconds = summary.blackout?.finalCopyMicroseconds ?? 0
        resumeMicroseconds = summary.blackout?.resumeMicroseconds ?? 0
        offCPUMicroseconds = summary.blackout?.offCPUMicroseconds ?? 0
        totalMicroseconds = summary.totalMicroseconds
        targetMicroseconds = summary.convergence.targetMicroseconds
        passes = summary.passes.count
        maximumThrottlePercent = summary.convergence.maximumThrottlePercent
        cpuMaximumThrottlePercent = summary.convergence.cpuMaximumThrottlePercent
        throttledMicroseconds = summary.convergence.throttledMicroseconds
        baselineStoresPerSecond = summary.convergence.baselineStoresPerSecond
        workloadSlowdown = summary.convergence.workloadSlowdown
        cpuSlowdown = summary.convergence.cpuSlowdown
        passesSlowdown = summary.convergence.passesSlowdown
        passesCPUSlowdown = summary.convergence.passesCPUSlowdown
        stopExceedsTarget = summary.convergence.stopExceedsTarget
    }

    enum CodingKeys: String, CodingKey {
        case workload, round, policy, result, passes
        case memoryBytes = "memory_bytes"
        case passEndReason = "pass_end_reason"
        case blackoutMicroseconds = "blackout_us"
        case predictedMicroseconds = "predicted_us"
        case predictionError = "prediction_error"
        case finalFrames = "final_frames"
        case stopMicroseconds = "stop_us"
        case finalHarvestMicroseconds = "final_harvest_us"
        case finalCopyMicroseconds = "final_copy_us"
        case resumeMicroseconds = "resume_us"
        case offCPUMicroseconds = "off_cpu_us"
        case totalMicroseconds = "total_us"
        case targetMicroseconds = "target_us"
        case maximumThrottlePercent = "max_throttle_percent"
        case cpuMaximumThrottlePercent = "cpu_max_throttle_percent"
        case throttledMicroseconds = "throttled_us"
        case baselineStoresPerSecond = "baseline_stores_per_s"
        case workloadSlowdown = "workload_slowdown"
        case cpuSlowdown = "cpu_slowdown"
        case passesSlowdown = "passes_slowdown"
        case passesCPUSlowdown = "passes_cpu_slowdown"
        case stopExceedsTarget = "stop_exceeds_target"
    }
}
