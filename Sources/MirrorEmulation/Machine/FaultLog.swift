import MirrorCore
import Synchronization

/// The faults the emulated modules have reported and not yet been taken, and the doorbell rung
/// when one is reported.
final class FaultLog: Sendable {
    private let pending = Mutex<[ModuleFault]>([])
    private let doorbell = Mutex<(@Sendable (ModuleFault) -> Void)?>(nil)
    private let armed = Mutex<[ModuleFault]>([])

    /// Keeps `fault` for the next blackout, after those kept already.
    func arm(_ fault: ModuleFault) { armed.withLock { $0.append(fault) } }

    /// The faults kept for this blackout, in the order they were kept: all of them strike in it.
    func takeArmed() -> [ModuleFault] {
        armed.withLock { faults in
            defer { faults.removeAll() }
            return faults
        }
    }

    /// Records `fault` (before its data is lost, so that whoever finds the loss finds the fault).
    func record(_ fault: ModuleFault) {
        pending.withLock { $0.append(fault) }
    }

    /// Rings the doorbell for `fault`.
    func ring(_ fault: ModuleFault) {
        doorbell.withLock { $0 }?(fault)
    }

    /// The faults reported since the last call, oldest first.
    func take() -> [ModuleFault] {
        pending.withLock { faults in
            defer { faults.removeAll() }
            return faults
        }
    }

    /// Sets what is called when a fault is reported.
    func setDoorbell(_ ring: @escaping @Sendable (ModuleFault) -> Void) {
        doorbell.withLock { $0 = ring }
    }
}
