/// Decides, pass after pass, how much each CPU is slowed so that the dirty set fits the blackout
/// target: by the policy's steps (`throttle`), or by a limit on each CPU's dirty rate that spares
/// the CPUs that write little (`dirty-limit`).
///
/// It reads each CPU's counters between passes to know its dirty rate (frames it turned dirty a
/// second; for backends that cannot tell CPUs apart, the pass's dirty rate shared out by stores),
/// and it keeps the figures the summary reports: the highest throttle, the time throttled.
struct ConvergenceController {
    /// A pass that leaves more than this share of the previous pass's dirty frames does not
    /// converge (QEMU's auto-converge uses the same half).
    static let convergingRatio = 0.5
    /// The share of the computed dirty-rate budget dirty-limit hands out, for rates that vary.
    static let safety = 0.8
    /// The most the dirty-limit tightens itself when its limits let more through than expected.
    static let minimumCorrection = 0.05
    /// While a dirty set much larger than the target's budget drains, each pass aims at this
    /// fraction of it.
    static let drainFactor = 4.0

    let cpuCount: Int
    /// The throttle in force on each CPU (a fraction of its pace taken away).
    private(set) var throttle: [Double]
    /// The highest throttle any CPU had.
    private(set) var maximumThrottle = 0.0
    /// The highest throttle each CPU had.
    private(set) var cpuMaximumThrottle: [Double]
    /// When a throttle was first set, if ever.
    private(set) var engagedAt: UInt64?
    /// Nanoseconds during which some CPU was throttled.
    private(set) var throttledNanoseconds: UInt64 = 0
    private var throttledSince: UInt64?
    /// Each CPU's dirty rate in the last pass, frames a second (as measured, under its throttle).
    private(set) var cpuDirtyRates: [Double]
    private var lastCounters: [CPUCounters]
    private var lastRead: UInt64 = 0
    /// The uniform step of the `throttle` policy.
    private var step = 0.0
    /// Dirty-limit's own correction of its budget, from how its last limits did.
    private var correction = 1.0
    /// The dirty frames the last dirty-limit expected after the next pass.
    private var expectedDirty: Double?
    /// Whether the last decision wanted more than the maximum throttle: slowing further is not
    /// possible, so a stall ends the passes.
    private(set) var saturated = false

    init(cpuCount: Int) {
        self.cpuCount = cpuCount
        throttle = Array(repeating: 0, count: cpuCount)
        cpuMaximumThrottle = Array(repeating: 0, count: cpuCount)
        cpuDirtyRates = Array(repeating: 0, count: cpuCount)
        lastCounters = Array(repeating: CPUCounters(), count: cpuCount)
    }

    /// Whether any CPU is slowed now.
    var isEngaged: Bool { throttle.contains { $0 > 0 } }

    /// The highest throttle in force now.
    var currentMaximum: Double { throttle.max() ?? 0 }

    /// Reads the CPUs' counters at `now`, the start of the window whose rates the next
    /// ``measure(hardware:now:passDirtyRate:)`` gives.
    mutating func start(hardware: any DuplexHardware, now: UInt64) {
        for cpu in 0..<cpuCount { lastCounters[cpu] = hardware.cpuCounters(cpu) }
        lastRead = now
    }

    /// Measures each CPU's dirty rate since the last reading. `passDirtyRate` (frames a second
    /// for the whole machine) is shared out by stores when the backend does not count frames per
    /// CPU.
    mutating func measure(hardware: any DuplexHardware, now: UInt64, passDirtyRate: Double) {
        let seconds = Double(now &- lastRead) / 1e9
        guard seconds > 0 else { return }
        var stores = [Double](repeating: 0, count: cpuCount)
        for cpu in 0..<cpuCount {
            let counters = hardware.cpuCounters(cpu)
            stores[cpu] = Double(counters.stores &- lastCounters[cpu].stores)
            if let dirtied = counters.dirtiedFrames, let before = lastCounters[cpu].dirtiedFrames {
                cpuDirtyRates[cpu] = Double(dirtied &- before) / seconds
            } else {
                cpuDirtyRates[cpu] = -1
            }
            lastCounters[cpu] = counters
        }
        if cpuDirtyRates.contains(where: { $0 < 0 }) {
            let total = stores.reduce(0, +)
            for cpu in 0..<cpuCount { cpuDirtyRates[cpu] = total > 0 ? passDirtyRate * stores[cpu] / total : 0 }
        }
        lastRead = now
    }

    /// After a pass whose prediction missed the target: slows the CPUs further if the pass did not
    /// converge (`dirty` frames harvested, against `previousDirty` of the pass before; the first
    /// pass, with none, counts as not converging for `dirty-limit`, which measures before it acts).
    /// `remaining` frames are dirty now and are the next pass's to copy; `frameBudget` is the most
    /// frames whose blackout fits the target; `passOverhead` (nanoseconds) and `copyPerFrame`
    /// (nanoseconds for a frame, given a count) are the pass's own costs. Returns whether the
    /// throttle changed.
    mutating func adjust(
        policy: DuplexPolicy, dirty: Int, previousDirty: Int?, remaining: Int, frameBudget: Int,
        passOverhead: Double, copyPerFrame: (Int) -> Double
    ) -> Bool {
        guard cpuCount > 0, policy.convergence != .none else { return false }
        if let previousDirty, Double(dirty) <= Double(previousDirty) * Self.convergingRatio { return false }
        var next = throttle
        switch policy.convergence {
        case .none:
            return false
        case .throttle:
            guard previousDirty != nil else { return false }
            step = step == 0 ? policy.throttleInitial : min(policy.throttleMaximum, step + policy.throttleIncrement)
            next = Array(repeating: step, count: cpuCount)
            saturated = step >= policy.throttleMaximum
        case .dirtyLimit:
            // The next pass copies the `remaining` frames; what the CPUs dirty meanwhile is what
            // the blackout (or the pass after) finds. Let them dirty no more than the budget then,
            // or, while a large dirty set drains, a quarter of it: draining over a few shorter
            // passes slows the CPUs less than forcing it into one.
            let wanted = max(Double(frameBudget), Double(remaining) / Self.drainFactor)
            let nextPass = passOverhead + copyPerFrame(remaining) * Double(remaining)
            if isEngaged, let expected = expectedDirty, expected > 0, Double(remaining) > expected {
                // The last limits let more through than expected: tighten in proportion.
                correction = max(Self.minimumCorrection, correction * expected / Double(remaining))
            }
            let absorbed = nextPass > 0 ? wanted / (nextPass / 1e9) * Self.safety : 0
            next = dirtyLimits(absorbed: absorbed, allowed: absorbed * correction, maximum: policy.throttleMaximum)
            expectedDirty = wanted
        }
        return next != throttle ? replace(with: next) : false
    }

    /// Every CPU at `fraction` (the deadline's maximum throttle). Returns whether anything changed.
    mutating func setAll(_ fraction: Double) -> Bool {
        let next = Array(repeating: fraction, count: cpuCount)
        return next != throttle ? replace(with: next) : false
    }

    /// Records the throttles in force from now on (the caller applies them to the hardware).
    private mutating func replace(with next: [Double]) -> Bool {
        throttle = next
        maximumThrottle = max(maximumThrottle, next.max() ?? 0)
        cpuMaximumThrottle = zip(cpuMaximumThrottle, next).map { max($0, $1) }
        return true
    }

    /// The dirty-limit. A CPU that dirties no more than an equal share of what the copy absorbs
    /// (`absorbed` frames a second) writes little and keeps its pace, whatever the correction
    /// says: the correction answers for the limits that let more through, and those are the fast
    /// CPUs'. The others share `allowed` (the absorbed rate, corrected) less what the light ones
    /// dirty, so that one dirtying less than an equal share of that keeps its pace too and the
    /// rest are each slowed just enough to stay under their share (water-filling), at most to
    /// `maximum`.
    private mutating func dirtyLimits(absorbed: Double, allowed: Double, maximum: Double) -> [Double] {
        // Each CPU's rate at full pace, from its rate under the throttle it had.
        let demand = (0..<cpuCount).map { cpuDirtyRates[$0] / max(1 - throttle[$0], 1 - maximum) }
        let lightShare = max(0, absorbed) / Double(cpuCount)
        var limits = demand
        var left = max(0, allowed - demand.filter { $0 <= lightShare }.reduce(0, +))
        var remaining = (0..<cpuCount).filter { demand[$0] > lightShare }.sorted { demand[$0] < demand[$1] }
        while let cpu = remaining.first {
            let share = left / Double(remaining.count)
            if demand[cpu] <= share {
                left -= demand[cpu]
                remaining.removeFirst()
            } else {
                for other in remaining { limits[other] = share }
                break
            }
        }
        let wanted = (0..<cpuCount).map { cpu in demand[cpu] <= 0 ? 0 : max(0, 1 - limits[cpu] / demand[cpu]) }
        saturated = wanted.contains { $0 > maximum }
        return wanted.map { min(maximum, $0) }
    }

    /// Keeps the time throttled: call when throttles are set or lifted, with the time.
    mutating func account(now: UInt64) {
        if let since = throttledSince { throttledNanoseconds += now &- since }
        throttledSince = isEngaged ? now : nil
        if isEngaged && engagedAt == nil { engagedAt = now }
    }

    /// Lifts every throttle (the blackout has ended, or the duplex failed).
    mutating func lift(now: UInt64) {
        account(now: now)
        throttle = Array(repeating: 0, count: cpuCount)
        throttledSince = nil
    }
}
