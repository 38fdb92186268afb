/// How a machine learns which frames its CPUs wrote: the dirty-tracking strategy behind
/// ``DuplexHardware/harvest(frames:flags:into:)``, replaceable as a whole.
///
/// The emulated machine has one of its own (a tracking bitvector marked by the CPUs, or the
/// dirty bits of emulated page tables); a backend on the real MMU (userfaultfd write-protect with
/// `PAGEMAP_SCAN`, or `mprotect`) is another, built over the memory the CPUs store to and handed
/// to the machine by whoever wires the system together. The machine checks the arguments of a
/// harvest (flags, range, output) before it calls the strategy.
public protocol DirtyTracking: AnyObject, Sendable {
    /// Starts tracking with every frame clean: from the return on, every CPU store marks its frame.
    func startTracking() throws(HardwareError)

    /// Stops tracking; the tracked state is dropped.
    func stopTracking()

    /// Whether tracking is on.
    var isTracking: Bool { get }

    /// The number of frames currently marked dirty (see ``DuplexHardware/dirtyFrameCount``).
    var dirtyFrameCount: Int { get }

    /// Reports (`get`) and/or clears (`clear`) the dirty frames of `frames`, with the semantics of
    /// ``DuplexHardware/harvest(frames:flags:into:)``. Arguments are already checked.
    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError) -> HarvestResult
}

/// Makes the dirty tracking of a real MMU over the memory a machine's CPUs store to: how a
/// backend such as userfaultfd write-protect is handed to a machine without the machine knowing it.
public protocol DirtyTrackingFactory: Sendable {
    /// The backend's name, as summaries report it (`"uffd"`).
    var backendName: String { get }

    /// Tracking of the CPUs' stores to `[cpuView, cpuView + byteCount)`, in frames of
    /// `frameSize` bytes. The memory is shared memory that other writers (DMA) reach through
    /// another mapping, which the tracking must not watch.
    func makeTracking(cpuView: UnsafeMutableRawPointer, byteCount: Int, frameSize: Int) throws(HardwareError)
        -> any DirtyTracking
}
