import MirrorCore
import MirrorEmulation
import MirrorLinux

/// The code of MirrorEmulation's article "Test a backend with MachineDriver": a dirty-tracking
/// backend plugged into a quiet emulated machine, written to by a ``MachineDriver`` at exact
/// moments of a harvest and of a duplex.
enum DriverTesting {
    /// Whether `backend` (nil: the machine's own tracking bitvector) reports exactly the frames
    /// the driver stored, and carries a duplex to lockstep.
    static func exercise(_ backend: (any DirtyTrackingFactory)?) throws -> Bool {
        var options = EmulatedMachine.Options()
        options.memorySize = 16 << 20
        options.workload.cpus = 0  // the driver is the only CPU
        options.workload.churn = 0
        options.mmu.enabled = false  // frames only: no emulated processes
        options.dma.rate = .limited(bytesPerSecond: 0)
        let machine = try EmulatedMachine(options: options, realMMU: backend)
        let driver = MachineDriver(machine: machine)

        // 1. The frames stored are the frames harvested, in ascending order.
        try machine.startTracking()
        for frame in [700, 2, 3] { driver.store(frame: frame) }
        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { output.deallocate() }
        let harvest = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: output)
        let harvested = Array(output[0..<harvest.reported])
        machine.stopTracking()

        // 2. A duplex with stores placed between its steps, from the engine's own thread.
        let policy = DuplexPolicy(thresholdFrames: 2, minProgress: 0, blackoutTargetNanoseconds: 0)
        let summary = DuplexEngine(hardware: machine, policy: policy).run { event in
            switch event {
            case .fullCopyCompleted:
                for frame in 100..<110 { driver.store(frame: frame) }
            case .passCompleted(let pass, _, _) where pass.pass == 1:
                driver.store(frame: 4_000)
            default:
                break
            }
        }

        // 3. In lockstep a store reaches both modules.
        let value = driver.store(frame: 5)
        let words = driver.words(frame: 5)
        print(
            "embed-test: MachineDriver on \(machine.backendName): harvested \(harvested), "
                + "\(summary.outcome.result) after \(summary.passes.count) passes")
        return harvested == [2, 3, 700] && summary.isDuplexed && words == (value, value)
    }

    /// Exercises the machine's own tracking, then the real MMU's.
    static func run(backend: RealMMUBackend) throws -> Bool {
        try exercise(nil) && exercise(backend)
    }
}
