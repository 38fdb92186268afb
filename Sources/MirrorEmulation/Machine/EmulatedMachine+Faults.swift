import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// The emulated modules fail and are replaced as real ones do: a lost module or an uncorrectable
/// frame loses that data on that module (it is overwritten with a poison pattern, so that reading
/// it anywhere shows), and the fault is reported; a failover swaps the modules' roles in a
/// blackout, as the memory controller redirects the CPUs' and the DMA engine's accesses.
extension EmulatedMachine: FaultTolerantHardware {
    /// What a lost or uncorrectable frame holds from then on.
    static let poison: UInt8 = 0xDE

    /// The faults reported since the last call, oldest first.
    public func takeFaults() -> [ModuleFault] { faultLog.take() }

    /// Calls `doorbell` with each fault as it is reported.
    public func setFaultDoorbell(_ doorbell: @escaping @Sendable (ModuleFault) -> Void) {
        faultLog.setDoorbell(doorbell)
    }

    /// Whether a spare module is installed.
    public var hasSpare: Bool { parts.modules.hasSpare }

    /// Loses the data `fault` names on its module (a removed spare cannot fail), then reports it.
    public func inject(_ fault: ModuleFault) throws(HardwareError) {
        if fault.module == .spare && !hasSpare {
            throw HardwareError(
                .moduleUnavailable, operation: "inject \(fault)", message: "no spare module is installed")
        }
        let module = fault.module == .active ? active : spare
        if fault.kind != .lost, let frame = fault.frame, frame < 0 || frame >= geometry.frameCount {
            throw HardwareError(
                .invalidFault, operation: "inject \(fault)",
                message: "frame \(frame) is outside the module's \(geometry.frameCount) frames")
        }
        // The report comes first, as a machine check precedes any read of the bad data: a scrub or
        // a verify that finds the lost data then finds the fault too, and a duplex is aborted.
        faultLog.record(fault)
        faultLog.ring(fault)
        switch fault.kind {
        case .lost:
            memset(module.base, Int32(Self.poison), module.byteCount)
        case .uncorrectable:
            memset(module.base + (fault.frame ?? 0) * geometry.frameSize, Int32(Self.poison), geometry.frameSize)
        case .correctable:
            break
        }
    }

    /// Raises `fault` with the CPUs and the DMA engine stopped: now if a blackout is in force, else
    /// inside the next one (drills), with any others kept for it: all in the same blackout.
    public func injectAtNextBlackout(_ fault: ModuleFault) {
        if isInBlackout {
            try? inject(fault)
        } else {
            faultLog.arm(fault)
        }
    }

    /// Stops the CPUs and the DMA engine, turns lockstep and dual-write off, makes the spare the
    /// active module and removes the former active one, and resumes them on the new active module.
    /// With file-backed modules the images are renamed to match the roles (`active.img` is the
    /// survivor, `failed.img` the removed module).
    public func failOver() throws(HardwareError) -> UInt64 {
        guard hasSpare else {
            throw HardwareError(.moduleUnavailable, operation: "fail over", message: "no spare module is installed")
        }
        guard tracksOwnWrites else {
            throw HardwareError(
                .moduleUnavailable, operation: "fail over",
                message: "hardware.backend = \(backendName) watches the active module's own mapping; "
                    + "failover needs the emulation's tracking (hardware.backend = \"emulated\")")
        }
        let start = MonotonicClock.nanoseconds()
        let entered = !isInBlackout
        if entered { _ = try enterBlackout() }
        parts.flags.lockstep.store(false, ordering: .releasing)
        parts.flags.dmaDualWrite.store(false, ordering: .releasing)
        parts.modules.swapRoles()
        if entered { parts.controller.resumeAll() }
        let duration = MonotonicClock.nanoseconds() &- start
        renameImages(("active.img", "failed.img"), ("spare.img", "active.img"))
        return duration
    }

    /// Turns lockstep and dual-write off (the CPUs see it at their next checkpoint) and removes
    /// the spare; with file-backed modules its image becomes `failed.img`.
    public func removeSpare() {
        guard hasSpare else { return }
        setLockstep(false)
        setDMADualWrite(false)
        parts.modules.removeSpare()
        renameImages(("spare.img", "failed.img"))
    }

    /// Puts a module with arbitrary contents in the spare's place (the removed module's memory,
    /// filled anew; with file-backed modules `failed.img` becomes `spare.img`).
    public func installSpare() throws(HardwareError) {
        guard !hasSpare else {
            throw HardwareError(
                .moduleUnavailable, operation: "install a spare", message: "a spare module is already installed")
        }
        spare.fill(seed: MonotonicClock.nanoseconds())
        renameImages(("failed.img", "spare.img"))
        parts.modules.installSpare()
    }

    /// Renames image files in the state directory, in order, when the modules are file-backed.
    private func renameImages(_ renames: (String, String)...) {
        guard case .file = options.backing, !options.activeMemory.isGiven else { return }
        let dir = options.stateDirectory
        for (from, to) in renames { _ = rename(dir + "/" + from, dir + "/" + to) }
    }
}
