import MirrorCore
import MirrorEmulation
import MirrordConfig
import MirrordService
import Testing

/// The configuration's ``MachineOptions`` mapped onto the emulated machine's options: nothing lost
/// on the way, the same defaults on both sides, and the writer-layout rule asked of one place.
@Suite("MachineFactory: the configuration's machine options onto the backend's")
struct MachineFactoryTests {
    /// The built-in defaults of the configuration are the emulated machine's, so that a key left
    /// out of `mirrord.conf` means the same to the loader and to the machine.
    @Test("the configuration's defaults map onto the emulated machine's defaults")
    func defaultsAgree() {
        #expect(MachineFactory.options(for: MirrordConfiguration()) == EmulatedMachine.Options())
    }

    /// Every key that shapes the machine arrives, each at a value other than its default.
    @Test("every machine key reaches the emulated machine's options")
    func everyFieldMaps() {
        var configuration = MirrordConfiguration()
        configuration.machine.memorySize = 64 << 20
        configuration.machine.backing = .file
        configuration.machine.stateDirectory = "/tmp/state"
        configuration.machine.workload.pattern = .sequential
        configuration.machine.workload.cpus = 3
        configuration.machine.workload.rate = .unlimited
        configuration.machine.workload.cpuRates = [.unlimited, .limited(bytesPerSecond: 1 << 20), .unlimited]
        configuration.machine.workload.cpuPatterns = [.uniform, .trace, .hotset]
        configuration.machine.workload.seed = 9
        configuration.machine.workload.hotFraction = 0.5
        configuration.machine.workload.hotShare = 0.25
        configuration.machine.workload.storeSize = 512
        configuration.machine.workload.tracePath = "/tmp/x.trace"
        configuration.machine.workload.churn = 7
        configuration.machine.mmu.hugeShare = 0.75
        configuration.machine.mmu.departingHook = false
        configuration.machine.dma.rate = .limited(bytesPerSecond: 0)
        configuration.machine.dma.blockSize = 2 << 20
        configuration.machine.faults.flipSpareBit = true
        configuration.machine.faults.blackoutStallNanoseconds = 5
        configuration.machine.faults.fullCopyStallNanoseconds = 6

        var expected = EmulatedMachine.Options()
        expected.memorySize = 64 << 20
        expected.backing = .file
        expected.stateDirectory = "/tmp/state"
        expected.workload.pattern = .sequential
        expected.workload.cpus = 3
        expected.workload.rate = .unlimited
        expected.workload.cpuRates = [.unlimited, .limited(bytesPerSecond: 1 << 20), .unlimited]
        expected.workload.cpuPatterns = [.uniform, .trace, .hotset]
        expected.workload.seed = 9
        expected.workload.hotFraction = 0.5
        expected.workload.hotShare = 0.25
        expected.workload.storeSize = 512
        expected.workload.tracePath = "/tmp/x.trace"
        expected.workload.churn = 7
        expected.mmu.hugeShare = 0.75
        expected.mmu.departingHook = false
        expected.dma.rate = .limited(bytesPerSecond: 0)
        expected.dma.blockSize = 2 << 20
        expected.faults.flipSpareBit = true
        expected.faults.blackoutStallNanoseconds = 5
        expected.faults.fullCopyStallNanoseconds = 6
        #expect(MachineFactory.options(for: configuration) == expected)
    }

    /// A real-MMU backend sets the emulated MMU and its churn aside, whatever the file said.
    @Test(
        "a real-MMU backend turns the emulated MMU and its churn off",
        arguments: [
            MirrordConfiguration.Backend.uffd, .mprotect,
        ])
    func realMMUStepsAside(backend: MirrordConfiguration.Backend) {
        var configuration = MirrordConfiguration()
        configuration.backend = backend
        let options = MachineFactory.options(for: configuration)
        #expect(!options.mmu.enabled)
        #expect(options.workload.churn == 0)
        #expect(MachineFactory.options(for: MirrordConfiguration()).mmu.enabled)
    }

    /// The loader's check and the machine's ask the same rule, so they agree on every layout.
    @Test("the configuration and the machine agree on which writers fit a frame")
    func writerLayoutAgrees() {
        for cpus in [0, 1, 7, 8, 63, 64, 256] {
            for storeSize in [8, 64, 512, 4096] {
                for dma in [ByteRate.limited(bytesPerSecond: 0), .unlimited] {
                    var configuration = MirrordConfiguration()
                    configuration.machine.workload.cpus = cpus
                    configuration.machine.workload.storeSize = storeSize
                    configuration.machine.dma.rate = dma
                    let options = MachineFactory.options(for: configuration)
                    #expect(configuration.machine.writerLayoutProblem == options.writerLayoutProblem)
                    #expect(configuration.machine.writerCount == options.writerCount)
                }
            }
        }
        var tooMany = MirrordConfiguration()
        tooMany.machine.workload.cpus = 8
        tooMany.machine.workload.storeSize = 512
        #expect(
            tooMany.machine.writerLayoutProblem
                == "9 writers (workload.cpus plus the DMA engine) need at least as many units of workload.store_size (512 B) in a 4096 B frame, which has 8; lower workload.store_size or workload.cpus"
        )
    }
}
