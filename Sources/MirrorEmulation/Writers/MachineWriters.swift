import MirrorCore
import Synchronization

/// The threads that write the active module: one per emulated CPU, running its workload stream
/// (through the MMU when there is one), and the DMA engine. Built with the machine, started and
/// shut down with it.
final class MachineWriters: Sendable {
    /// What each CPU thread runs.
    private struct CPUPlan: Sendable {
        let cpu: EmulatedCPU
        let stream: WorkloadStream
        let churn: ProcessChurn?
    }

    /// How many CPUs store.
    let cpuCount: Int
    /// Where the writers count their work: each CPU its stores (slot `cpu`), the DMA engine its
    /// transfers (slot ``cpuCount``). Exact while every writer is stopped at a checkpoint.
    let storeCounters: WriterCounters
    /// Where the engine sets each CPU's throttle.
    let throttles: ThrottleTable
    /// Frames the writers can dirty between two looks at a dirty limit: every CPU's batch of
    /// stores and the DMA engine's block.
    let dirtyLimitSlack: Int
    private let plans: [CPUPlan]
    private let dma: DMAEngine?
    private let mmu: EmulatedMMU?
    private let controller: BlackoutController
    private let flags: MachineFlags
    private let threads = Mutex<[WorkerThread]>([])

    /// Plans the CPUs and the DMA engine of a machine; nothing runs until ``start()``.
    init(parts: MachineParts, options: EmulatedMachine.Options, trace: LackeyTrace?, record: StoreRecord?) {
        let workload = options.workload
        cpuCount = workload.cpus
        controller = parts.controller
        flags = parts.flags
        mmu = parts.mmu
        storeCounters = WriterCounters(cpus: workload.cpus + 1)
        throttles = ThrottleTable(cpus: workload.cpus)
        let frameShift = options.frameSize.trailingZeroBitCount
        // With the MMU, patterns pick virtual pages of the CPU's processes; without, frames.
        let frames = parts.mmu == nil ? parts.geometry.frameCount : parts.processPages
        let counters = storeCounters
        let throttles = throttles
        plans = (0..<workload.cpus).map { index in
            let perCPU = workload.bytesPerSecond(cpu: index)
            let storesPerBatch =
                perCPU.map {
                    max(
                        EmulatedCPU.minimumBatch,
                        min(EmulatedCPU.maximumBatch, $0 / workload.storeSize / EmulatedCPU.batchesPerSecond))
                } ?? EmulatedCPU.unlimitedBatch
            let cpu = EmulatedCPU(
                index: index, modules: parts.modules, frameShift: frameShift,
                storeWords: workload.storeSize / 8, bitmap: parts.bitmap, controller: parts.controller,
                flags: parts.flags,
                bytesPerSecond: perCPU, storesPerBatch: storesPerBatch,
                seed: EmulatedCPU.seed(workload: workload.seed, cpu: index),
                stores: counters, throttles: throttles, record: record?.values, storeShift: parts.layout.storeShift,
                copyOnWrite: parts.copyOnWrite)
            let stream = WorkloadStream.make(
                cpu: index, cpus: workload.cpus, frames: frames, workload: workload, layout: parts.layout, trace: trace)
            let churn = parts.mmu.map { mmu in
                ProcessChurn(
                    mmu: mmu, cpu: index, pageCount: parts.processPages,
                    operationsPerSecond: workload.churn / Double(max(1, workload.cpus)),
                    seed: workload.seed &+ UInt64(index))
            }
            return CPUPlan(cpu: cpu, stream: stream, churn: churn)
        }
        if options.dma.rate.bytesPerSecond != 0 {
            dma = DMAEngine(
                writer: workload.cpus, modules: parts.modules, frameShift: frameShift,
                frameCount: parts.geometry.frameCount, blockFrames: options.dma.blockSize / options.frameSize,
                layout: parts.layout, controller: parts.controller, locks: parts.locks, flags: parts.flags,
                bitmap: parts.bitmap, bytesPerSecond: options.dma.rate.bytesPerSecond, seed: workload.seed,
                transfers: counters, record: record?.values, copyOnWrite: parts.copyOnWrite)
        } else {
            dma = nil
        }
        dirtyLimitSlack =
            plans.reduce(0) { $0 + $1.cpu.storesPerBatch } + (dma.map { max(1, $0.blockFrames) } ?? 0)
    }

    /// Whether the DMA engine runs.
    var hasDMA: Bool { dma != nil }

    /// Starts the CPU threads and the DMA engine (once). When a thread cannot be created, the
    /// ones already running stay until ``shutdown()``.
    func start() throws(ThreadCreationError) {
        try threads.withLock { (threads) throws(ThreadCreationError) in
            guard threads.isEmpty else { return }
            for (index, plan) in plans.enumerated() {
                if let mmu, let churn = plan.churn {
                    threads.append(
                        try WorkerThread(name: "mirrord-cpu\(index)") {
                            plan.stream.run(on: plan.cpu, mmu: mmu, churn: churn)
                        })
                } else {
                    threads.append(try WorkerThread(name: "mirrord-cpu\(index)") { plan.stream.run(on: plan.cpu) })
                }
            }
            if let dma {
                threads.append(try WorkerThread(name: "mirrord-dma") { dma.run() })
            }
        }
    }

    /// Stops and joins every thread (ending a blackout first if one is in force).
    func shutdown() {
        let running = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        guard !running.isEmpty else { return }
        flags.shutdown.store(true, ordering: .releasing)
        if controller.inBlackout { controller.resumeAll() } else { controller.announce() }
        for thread in running { thread.join() }
    }

    /// Stores the CPUs have made since the machine started (counted per batch).
    var storeCount: Int {
        (0..<cpuCount).reduce(0) { $0 + storeCounters.count(of: $1) }
    }

    /// Transfers the DMA engine has made since the machine started (0 when it does not run).
    var transferCount: Int { storeCounters.count(of: cpuCount) }
}
