import MirrorCore

/// A CPU's workload: one of the store streams, closed over so that each CPU thread runs a loop
/// specialised for its pattern (no dynamic dispatch per store).
enum WorkloadStream: Sendable {
    case uniform(UniformStream)
    case hotset(HotSetStream)
    case sequential(SequentialStream)
    case trace(TraceStream)

    /// The stream of CPU `cpu` of `cpus` for `workload`, over `frames` frames (or, with the MMU,
    /// the virtual pages of the CPU's processes).
    static func make(
        cpu: Int, cpus: Int, frames: Int, workload: EmulatedMachine.Options.Workload, layout: LaneLayout,
        trace: LackeyTrace?
    ) -> WorkloadStream {
        let laneUnits = layout.unitCount(lane: cpu)
        var random = WyRandom(seed: workload.seed &* 0x100_0000_01B3 &+ UInt64(cpu))
        switch workload.pattern(cpu: cpu) {
        case .uniform:
            return .uniform(
                UniformStream(random: random, frames: frames, lane: cpu, laneUnits: laneUnits, layout: layout))
        case .hotset:
            let hotCount = max(1, Int(Double(frames) * workload.hotFraction))
            // Every CPU draws the same hot set: the seed picks its place.
            var placement = WyRandom(seed: workload.seed)
            let hotStart = scaled(placement.next(), frames - hotCount + 1)
            _ = random.next()
            return .hotset(
                HotSetStream(
                    random: random, frames: frames, hotStart: hotStart, hotCount: hotCount,
                    hotThreshold: UInt64(workload.hotShare * 0x1p32), lane: cpu, laneUnits: laneUnits, layout: layout))
        case .sequential:
            let start = frames * cpu / max(1, cpus)
            return .sequential(
                SequentialStream(frame: start, frames: frames, lane: cpu, laneUnits: laneUnits, layout: layout))
        case .trace:
            let trace = trace!
            let start = trace.stores.count * cpu / max(1, cpus)
            return .trace(TraceStream(trace: trace, position: start, lane: cpu, layout: layout, frames: frames))
        }
    }

    /// Runs the stream on `cpu`, storing to frames directly, until the machine shuts down.
    func run(on cpu: EmulatedCPU) {
        switch self {
        case .uniform(let s): cpu.run(s)
        case .hotset(let s): cpu.run(s)
        case .sequential(let s): cpu.run(s)
        case .trace(let s): cpu.run(s)
        }
    }

    /// Runs the stream on `cpu` through the emulated MMU, with `churn` editing page tables.
    func run(on cpu: EmulatedCPU, mmu: EmulatedMMU, churn: ProcessChurn) {
        switch self {
        case .uniform(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .hotset(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .sequential(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .trace(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        }
    }
}
