import Foundation
import MirrorCore
import MirrorEmulation
import MirrorTestSupport
import Testing

// The machine helpers of MirrorEmulationTests that the real-MMU tests need, on the public API of
// MirrorEmulation only: the two test targets share no module but MirrorTestSupport, which knows
// only MirrorCore.

/// The parent of every suite that runs machines with CPU and DMA threads or the real MMU's
/// process-wide signal handler: they run one at a time, and one at a time with such suites of
/// other test targets (``MachineThreads``), so that they neither compete for the two cores nor
/// share the mprotect handler.
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

/// Options for a machine with no CPU threads and no DMA, written to by hand.
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

/// Waits (yielding the core) until `condition` holds; records a failure after `seconds`. Tests
/// wait for what they need to have happened, never for a length of time.
func waitUntil(
    _ what: String, seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
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
/// the engine after the full copy until the CPUs have made `storesAfterCopy` more stores (so that
/// the passes always have dirty frames to harvest, however the threads are scheduled); lets the
/// workload make `storesAfter` more stores (in lockstep, if duplexed), stops the threads and
/// returns the summary.
func duplex(
    _ machine: EmulatedMachine, policy: DuplexPolicy, storesAfterCopy: Int = 1_000, storesAfter: Int = 20_000
) throws -> DuplexSummary {
    try machine.start()
    let cpus = machine.options.workload.cpus > 0
    if cpus {
        waitUntil("the CPUs have stored") { machine.storeCount > 0 }
    }
    let summary = DuplexEngine(hardware: machine, policy: policy).run { event in
        guard cpus, case .fullCopyCompleted = event else { return }
        let reached = machine.storeCount + storesAfterCopy
        waitUntil("the CPUs made \(storesAfterCopy) stores") { machine.storeCount >= reached }
    }
    let reached = machine.storeCount + storesAfter
    if cpus {
        waitUntil("the CPUs made \(storesAfter) more stores") { machine.storeCount >= reached }
    }
    machine.shutdown()
    return summary
}
