/// What `bench --only tail` found: every sample, and per size the distribution of the blackout
/// and of its ratio to the floor, with the samples over 1.5 times their floor (the p99.9 bound)
/// counted by cause.
struct TailResult: Encodable {
    /// One size's distribution (or every sample's, `targetFrames` nil).
    struct Distribution: Encodable {
        let targetFrames: Int?
        let count: Int
        let ratio: Percentiles
        let durationMicroseconds: Percentiles
        /// Samples over ``TailSample/attributedAbove`` times their floor, by cause.
        let attributed: [String: Int]

        init(targetFrames: Int?, samples: [TailSample]) {
            self.targetFrames = targetFrames
            count = samples.count
            ratio = Percentiles(samples.map(\.blackoutRatio))
            durationMicroseconds = Percentiles(samples.map { Double($0.durationMicroseconds) })
            attributed = Dictionary(grouping: samples.filter { $0.cause != .within }, by: \.cause.rawValue)
                .mapValues(\.count)
        }

        enum CodingKeys: String, CodingKey {
            case count, ratio
            case targetFrames = "target_frames"
            case durationMicroseconds = "duration_us"
            case attributed = "over_1_5x"
        }
    }

    /// The 50th, 99th and 99.9th percentile (nearest rank) and the maximum.
    struct Percentiles: Encodable {
        let p50: Double
        let p99: Double
        let p999: Double
        let max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            func rank(_ q: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                let index = Int((Double(sorted.count) * q).rounded(.up)) - 1
                return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
            }
            p50 = rank(0.5)
            p99 = rank(0.99)
            p999 = rank(0.999)
            max = sorted.last ?? 0
        }
    }

    let samples: [TailSample]
    let distributions: [Distribution]
    /// How long the samples took.
    let seconds: Double
    /// The host's steal time over the run, as a share of every CPU's time (`/proc/stat`).
    let hostStealShare: Double?

    init(samples: [TailSample], seconds: Double, hostStealShare: Double?) {
        self.samples = samples
        self.seconds = seconds
        self.hostStealShare = hostStealShare
        distributions =
            TailBench.targetFrames.map { target in
                Distribution(targetFrames: target, samples: samples.filter { $0.targetFrames == target })
            } + [Distribution(targetFrames: nil, samples: samples)]
    }

    /// The five samples with the highest ratio, worst first.
    var worst: [TailSample] { Array(samples.sorted { $0.blackoutRatio > $1.blackoutRatio }.prefix(5)) }

    enum CodingKeys: String, CodingKey {
        case samples, distributions, seconds
        case hostStealShare = "host_steal_share"
    }
}
