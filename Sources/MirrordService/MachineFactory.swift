import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrordConfig

/// The one place that picks a backend: builds the machine a configuration asks for, handing it
/// the real MMU's dirty tracking when `hardware.backend` names one.
package enum MachineFactory {
    /// The machine for `configuration`, its modules filled and its CPUs and DMA engine not yet
    /// started. With a real-MMU backend the emulated MMU and its churn step aside, as the loader
    /// has them do for a file.
    package static func makeMachine(_ configuration: MirrordConfiguration) throws(HardwareError) -> EmulatedMachine {
        try EmulatedMachine(options: options(for: configuration), realMMU: realMMU(for: configuration.backend))
    }

    /// The emulated machine's options for `configuration`: the configuration's own
    /// ``MachineOptions`` mapped field by field (the configuration imports no backend), the
    /// emulated MMU and its churn set aside when a real-MMU backend tracks the writes.
    package static func options(for configuration: MirrordConfiguration) -> EmulatedMachine.Options {
        let machine = configuration.machine
        var options = EmulatedMachine.Options()
        options.memorySize = machine.memorySize
        options.backing = backing(machine.backing)
        options.stateDirectory = machine.stateDirectory
        options.workload.pattern = pattern(machine.workload.pattern)
        options.workload.cpus = machine.workload.cpus
        options.workload.rate = machine.workload.rate
        options.workload.cpuRates = machine.workload.cpuRates
        options.workload.cpuPatterns = machine.workload.cpuPatterns.map(pattern)
        options.workload.seed = machine.workload.seed
        options.workload.hotFraction = machine.workload.hotFraction
        options.workload.hotShare = machine.workload.hotShare
        options.workload.storeSize = machine.workload.storeSize
        options.workload.tracePath = machine.workload.tracePath
        options.workload.churn = machine.workload.churn
        options.mmu.enabled = machine.mmu.enabled
        options.mmu.hugeShare = machine.mmu.hugeShare
        options.mmu.departingHook = machine.mmu.departingHook
        options.dma.rate = machine.dma.rate
        options.dma.blockSize = machine.dma.blockSize
        options.faults.flipSpareBit = machine.faults.flipSpareBit
        options.faults.blackoutStallNanoseconds = machine.faults.blackoutStallNanoseconds
        options.faults.fullCopyStallNanoseconds = machine.faults.fullCopyStallNanoseconds
        if configuration.backend.usesRealMMU {
            options.mmu.enabled = false
            options.workload.churn = 0
        }
        return options
    }

    /// The emulation's backing for the configuration's.
    private static func backing(_ backing: MachineOptions.Backing) -> EmulatedMachine.Options.Backing {
        switch backing {
        case .anonymous: .anonymous
        case .file: .file
        }
    }

    /// The emulation's store pattern for the configuration's.
    private static func pattern(_ pattern: MachineOptions.Pattern) -> EmulatedMachine.Options.Pattern {
        switch pattern {
        case .uniform: .uniform
        case .hotset: .hotset
        case .sequential: .sequential
        case .trace: .trace
        }
    }

    /// The real-MMU tracking of `backend`, or nil for the emulation's own.
    package static func realMMU(for backend: MirrordConfiguration.Backend) -> RealMMUBackend? {
        switch backend {
        case .emulated: nil
        case .uffd: .uffd
        case .mprotect: .mprotect
        }
    }
}

/// What the service needs of a machine beyond ``DuplexHardware``: its threads' life cycle.
package protocol ServiceMachine: DuplexHardware {
    /// Starts the machine's CPUs and DMA engine.
    func start() throws(HardwareError)
    /// Stops and joins them.
    func shutdown()
}

extension EmulatedMachine: ServiceMachine {}
