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
        var options = configuration.machine
        if configuration.backend.usesRealMMU {
            options.mmu.enabled = false
            options.workload.churn = 0
        }
        return try EmulatedMachine(options: options, realMMU: realMMU(for: configuration.backend))
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
