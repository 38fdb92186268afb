import MirrorCore
import Synchronization

/// The faults the emulated modules have reported and not yet been taken, and the doorbell rung
/// when one is reported.
final class FaultLog: Sendable {
    private let pending = Mutex<[ModuleFault]>([])
    private let doorbell = Mutex<(@Sendable () -> Void)?>(nil)

    /// Reports `fault` and rings the doorbell.
    func report(_ fault: ModuleFault) {
        pending.withLock { $0.append(fault) }
        doorbell.withLock { $0 }?()
    }

    /// The faults reported since the last call, oldest first.
    func take() -> [ModuleFault] {
        pending.withLock { faults in
            defer { faults.removeAll() }
            return faults
        }
    }

    /// Sets what is called when a fault is reported.
    func setDoorbell(_ ring: @escaping @Sendable () -> Void) {
        doorbell.withLock { $0 = ring }
    }
}
