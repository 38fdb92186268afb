import Foundation
import MirrorCore
import MirrorTestSupport
import Synchronization
import Testing

@testable import MirrorEmulation

/// The parent of every suite that runs machines with CPU and DMA threads (or the real MMU's
/// process-wide signal handler): they run one at a time, and one at a time with such suites of
/// other test targets (``MachineThreads``), so that they neither compete for the two cores nor
/// share the mprotect handler. Suites whose machines run no CPU or DMA thread (only their idle
/// copy helper) run beside them.
@Suite(.serialized, .machineThreads) struct MachineSuites {}

/// Options for fast tests: 32 MiB modules, a busy workload and DMA.
func testOptions(pattern: EmulatedMachine.Options.Pattern = .hotset, seed: UInt64 = 1) -> EmulatedMachine.Options {
    var options = EmulatedMachine.Options()
    options.memorySize = 32 << 20
    options.workload.pattern = pattern
    options.workload.seed = seed
    options.workload.rate = .limited(bytesPerSecond: 48 << 20)
    options.dma.rate = .limited(bytesPerSecond: 64 << 20)
    options.dma.blockSize = 16 << 10
    return options
}

/// The policy of the fast tests: a threshold of 256 frames, at most 20 passes.
let testPolicy = DuplexPolicy(thresholdFrames: 256, maxPasses: 20)

/// Options for a machine with no CPU threads and no DMA, driven by hand (``MachineDriver``).
func quietOptions(megabytes: Int = 16, mmu: Bool = true) -> EmulatedMachine.Options {
    var options = EmulatedMachine.Options()
    options.memorySize = megabytes << 20
    options.workload.cpus = 0
    options.workload.churn = 0
    options.mmu.enabled = mmu
    options.mmu.hugeShare = 0
    options.dma.rate = .limited(bytesPerSecond: 0)
    return options
}

/// Frames that differ between the two modules, found by a byte comparison of our own (not the
/// engine's verify).
func differingFrames(_ machine: EmulatedMachine) -> [Int] {
    let size = machine.geometry.frameSize
    return (0..<machine.geometry.frameCount).filter { frame in
        memcmp(machine.active.base + frame * size, machine.spare.base + frame * size, size) != 0
    }
}

/// Waits (yielding the core) until `condition` holds; records a failure after `seconds`, a hang
/// detector generous enough for a machine whose cores are busy with other builds. Tests wait for
/// what they need to have happened, never for a length of time.
func waitUntil(
    _ what: String, seconds: Double = 300, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) {
    let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if MonotonicClock.nanoseconds() > deadline {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            return
        }
        sched_yield()
    }
}

/// Runs one duplex on a machine whose threads are started here, once its CPUs have stored; holds
/// the engine at each event until the CPUs have made the stores `storesAt` asks for (by default
/// 1,000 tracked stores after the full copy, so that the passes always have dirty frames to harvest,
/// however the threads are scheduled); lets the workload make `storesAfter` more stores (in
/// lockstep, if duplexed), stops the threads and returns the summary.
func duplex(
    _ machine: EmulatedMachine, policy: DuplexPolicy, storesAfter: Int = 20_000,
    storesAt: @escaping @Sendable (DuplexEvent) -> Int = storesAfterFullCopy(1_000)
) throws -> DuplexSummary {
    try machine.start()
    let cpus = machine.options.workload.cpus > 0
    if cpus {
        waitUntil("the CPUs have stored") { machine.storeCount > 0 }
    }
    let summary = DuplexEngine(hardware: machine, policy: policy).run { event in
        let stores = cpus ? storesAt(event) : 0
        guard stores > 0 else { return }
        let reached = machine.storeCount + stores
        waitUntil("the CPUs made \(stores) stores") { machine.storeCount >= reached }
    }
    let reached = machine.storeCount + storesAfter
    if machine.options.workload.cpus > 0 {
        waitUntil("the CPUs made \(storesAfter) more stores") { machine.storeCount >= reached }
    }
    machine.shutdown()
    return summary
}

/// The stores ``duplex(_:policy:storesAfter:storesAt:)`` waits for: `count` after the full copy.
func storesAfterFullCopy(_ count: Int) -> @Sendable (DuplexEvent) -> Int {
    { event in
        if case .fullCopyCompleted = event { return count }
        return 0
    }
}
