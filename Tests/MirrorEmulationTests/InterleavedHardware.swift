import MirrorCore
import MirrorEmulation
import Synchronization

/// An emulated machine with its writes scripted into the duplex: every call goes to `machine`
/// (its CPUs' counters and throttles too, for the convergence control),
/// and around the harvest of pass `n` (from 1; the blackout's harvest is not a pass) two hooks
/// run: `beforePass(n)` before its first harvest call, when pass `n - 1` has copied and counted
/// (writes there are the next pass's to find), and `duringPass(n)` right after its harvest, before
/// its copy and its count (writes there race the pass, as a CPU's store does). With these a test
/// places each store and page-table event at exactly the point of the duplex it wants, with no
/// thread and no sleep.
final class InterleavedHardware: DuplexHardware {
    let machine: EmulatedMachine
    private let beforePass: @Sendable (Int) -> Void
    private let duringPass: @Sendable (Int) -> Void
    private let pass = Mutex(0)
    private let blackoutCopyLengths = Mutex<[Int]>([])
    /// The length of every frame list copied with the CPUs stopped, in order.
    var copiesInBlackout: [Int] { blackoutCopyLengths.withLock { $0 } }

    init(
        _ machine: EmulatedMachine, beforePass: @escaping @Sendable (Int) -> Void = { _ in },
        duringPass: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.machine = machine
        self.beforePass = beforePass
        self.duringPass = duringPass
    }

    var backendName: String { machine.backendName }
    var geometry: MemoryGeometry { machine.geometry }
    var dirtyFrameCount: Int { machine.dirtyFrameCount }
    var statistics: [String: Int] { machine.statistics }

    func startTracking() throws(HardwareError) { try machine.startTracking() }
    func stopTracking() { machine.stopTracking() }

    func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError) -> HarvestResult
    {
        let inPass = flags == .getAndClear && !machine.isInBlackout
        if inPass && frames.lowerBound == 0 {
            beforePass(
                pass.withLock { n in
                    n += 1
                    return n
                })
        }
        let result = try machine.harvest(frames: frames, flags: flags, into: output)
        if inPass && result.scanEnd == frames.upperBound { duringPass(pass.withLock { $0 }) }
        return result
    }

    func copyToSpare(frames: Range<Int>) { machine.copyToSpare(frames: frames) }
    func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        if machine.isInBlackout { blackoutCopyLengths.withLock { $0.append(frameList.count) } }
        machine.copyToSpare(frameList: frameList)
    }
    func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        machine.verify(frames: frames, mismatches: mismatches)
    }
    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult
    {
        machine.verify(frameList: frameList, mismatches: mismatches)
    }
    func enterBlackout() throws(HardwareError) -> UInt64 { try machine.enterBlackout() }
    func leaveBlackout() { machine.leaveBlackout() }
    func setDMADualWrite(_ enabled: Bool) { machine.setDMADualWrite(enabled) }
    func setLockstep(_ enabled: Bool) { machine.setLockstep(enabled) }
    var copyThreadsOffCPUNanoseconds: UInt64 { machine.copyThreadsOffCPUNanoseconds }
    var cpuCount: Int { machine.cpuCount }
    func cpuCounters(_ cpu: Int) -> CPUCounters { machine.cpuCounters(cpu) }
    func setThrottle(cpu: Int, fraction: Double) { machine.setThrottle(cpu: cpu, fraction: fraction) }
}
