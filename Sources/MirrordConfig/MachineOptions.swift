import MirrorCore

/// The shape of the machine `mirrord.conf` asks for: its memory, the workload its CPUs run, its
/// MMU, its DMA engine and the faults injected on purpose (`[memory]`, `[workload]`, `[mmu]`,
/// `[tracking]`, `[dma]` but `dual_write`, and `fault.flip_spare_bit`, `fault.blackout_stall`,
/// `fault.full_copy_stall`).
///
/// The configuration's own value, so that this module imports no backend: the service's
/// `MachineFactory` maps it onto the backend's options. The defaults are those of
/// `config/mirrord.conf`; a service test keeps them equal to the emulated machine's.
package struct MachineOptions: Sendable, Hashable {
    /// Bytes in each module (a whole number of frames).
    package var memorySize: Int = 1 << 30
    /// What the modules are made of.
    package var backing: Backing = .anonymous
    /// Where file-backed modules live.
    package var stateDirectory: String = "/var/lib/mirrord"
    /// What the CPUs run.
    package var workload = Workload()
    /// The emulated MMU.
    package var mmu = MMU()
    /// The DMA engine.
    package var dma = DMA()
    /// Faults injected on purpose.
    package var faults = Faults()

    /// The built-in defaults.
    package init() {}

    /// The frame size; fixed at 4 KiB, as on x86-64.
    package var frameSize: Int { MemoryGeometry.standardFrameSize }

    /// The writers of each frame (the CPUs and the DMA engine) and whether they fit.
    package var writerLayout: WriterLayout {
        WriterLayout(cpus: workload.cpus, dmaRate: dma.rate, storeSize: workload.storeSize, frameSize: frameSize)
    }

    /// The writers that share each frame: the CPUs, and the DMA engine when it runs.
    package var writerCount: Int { writerLayout.writerCount }

    /// Why a machine of these options could not be built because its writers do not fit in a
    /// frame, or nil: the question the machine asks itself, ``WriterLayout/problem``.
    package var writerLayoutProblem: String? { writerLayout.problem }
}
