/// A machine whose memory modules can fail and be replaced: it reports module faults, switches
/// the CPUs and the DMA engine to the spare (failover), runs on one module (simplex), and takes a
/// replacement spare, which a new duplex then brings into lockstep.
///
/// The service decides what a fault means (``ModuleFault``); the hardware only reports and obeys.
public protocol FaultTolerantHardware: DuplexHardware {
    /// Faults reported since the last call, oldest first.
    func takeFaults() -> [ModuleFault]

    /// Raises `fault` as the hardware would (for drills and tests): a lost module or an
    /// uncorrectable frame loses that data on that module, and the fault is reported.
    func inject(_ fault: ModuleFault) throws(HardwareError)

    /// Raises `fault` with the CPUs and the DMA engine stopped: now if a blackout is in force, else
    /// inside the next one (drills of a fault in that phase).
    func injectAtNextBlackout(_ fault: ModuleFault)

    /// Calls `doorbell` with each fault as it is reported (on the reporting thread; it must
    /// return quickly), so that whoever handles faults need not poll and can abort a duplex at once.
    func setFaultDoorbell(_ doorbell: @escaping @Sendable (ModuleFault) -> Void)

    /// Whether a spare module is installed (not removed after a failure).
    var hasSpare: Bool { get }

    /// Switches the CPUs and the DMA engine to the spare in a blackout, and removes the former
    /// active module: from the return on the machine runs simplex on the former spare. Nothing
    /// written before the switch is lost when the modules were in lockstep. Returns the blackout
    /// (nanoseconds).
    func failOver() throws(HardwareError) -> UInt64

    /// Leaves lockstep and DMA dual-write and removes the spare: the machine runs simplex.
    func removeSpare()

    /// Installs a replacement spare with arbitrary contents (a new duplex brings it into lockstep).
    func installSpare() throws(HardwareError)
}
