import MirrorCore
import MirrorEmulation
import MirrorLinux

/// The check `make embed-test` exists for: an emulated machine whose writes the real MMU tracks
/// (uffd, or mprotect where ``RealMMUProbe`` says uffd cannot run), written to by hand, must
/// harvest exactly the frames written, and nothing on a second harvest.
enum HarvestCheck {
    /// The frames written: both ends of the module, a run, and a few apart.
    static let writtenFrames = [0, 3, 4, 5, 511, 512, 900, 4095]

    /// uffd where the probe says it works here; otherwise mprotect, saying why.
    static func chooseBackend() -> RealMMUBackend {
        switch RealMMUProbe.check() {
        case .success(let works):
            print("embed-test: tracking with uffd (\(works))")
            return .uffd
        case .failure(let reason):
            print("embed-test: uffd cannot run here (\(reason)); tracking with mprotect")
            return .mprotect
        }
    }

    /// Runs the check with `backend`; returns whether the harvest was exact.
    static func run(backend: RealMMUBackend) throws -> Bool {
        var options = EmulatedMachine.Options()
        options.memorySize = 16 << 20  // 4,096 frames of 4 KiB
        options.workload.cpus = 0  // no CPU threads: this program is the only writer
        options.workload.churn = 0
        options.mmu.enabled = false  // the real MMU tracks the stores, not the emulated one
        options.dma.rate = .limited(bytesPerSecond: 0)
        let machine = try EmulatedMachine(options: options, realMMU: backend)
        defer { machine.shutdown() }

        try machine.startTracking()
        defer { machine.stopTracking() }
        for frame in writtenFrames {
            machine.active.base.storeBytes(of: 0xAB, toByteOffset: frame * machine.geometry.frameSize, as: UInt8.self)
        }
        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { output.deallocate() }
        let first = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: output)
        let harvested = output[0..<first.reported].map { Int($0) }
        let again = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: output)

        print("embed-test: \(machine.backendName) harvested \(harvested), then \(again.reported) frames")
        return harvested == writtenFrames && again.reported == 0 && machine.backendName == backend.backendName
    }
}
