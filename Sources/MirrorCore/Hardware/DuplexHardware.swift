/// Everything the duplex engine sees of the machine: an active memory module that running CPUs and
/// a DMA engine write to, a spare module to bring into the same state, dirty tracking, the copy
/// path between them, the blackout, DMA dual-write and lockstep.
///
/// The engine never knows which backend it drives. Backends keep the hot paths (harvest, copy,
/// verify) on raw memory; the buffers passed in are owned by the caller and reused across calls.
///
/// Frame numbers are `UInt32` in output vectors (16 TiB of 4 KiB frames), `Int` in ranges.
public protocol DuplexHardware: AnyObject, Sendable {
    /// A short name of the backend, as reported in summaries (`"emulated"`).
    var backendName: String { get }

    /// The geometry of the active and the spare module (they are the same).
    var geometry: MemoryGeometry { get }

    /// Turns on dirty tracking with every frame clean: from the return on, every CPU store marks
    /// its frame dirty. Calling it while tracking is active clears the tracked state.
    func startTracking() throws(HardwareError)

    /// Turns dirty tracking off; the tracked state is dropped.
    func stopTracking()

    /// The number of frames currently marked dirty: the running count kept beside the tracking
    /// bitvector (read without a scan), or, for backends without one, a count by scanning. It may
    /// lag concurrent stores by a few frames; it steers when the passes end.
    var dirtyFrameCount: Int { get }

    /// Reports and/or clears the dirty frames of `frames`, atomically per frame, in ascending
    /// order, into `output` (frame numbers). When `output` fills, the call stops; frames not
    /// reported keep their dirty state. With `.clear` alone, the whole range is cleared and
    /// `output` is not used. Unknown flags are rejected before anything changes.
    ///
    /// When a `.clear` returns, every store that landed before the clear is visible to a
    /// following copy, and every later store marks its frame dirty again.
    func harvest(
        frames: Range<Int>,
        flags: HarvestFlags,
        into output: UnsafeMutableBufferPointer<UInt32>
    ) throws(HarvestError) -> HarvestResult

    /// Copies a contiguous run of frames from the active module to the spare.
    func copyToSpare(frames: Range<Int>)

    /// Copies the listed frames (ascending) from the active module to the spare.
    func copyToSpare(frameList: UnsafeBufferPointer<UInt32>)

    /// Compares a contiguous run of frames of the spare with the active module and lists the
    /// differing frame numbers in `mismatches` (counting, not listing, those beyond its capacity).
    func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult

    /// Compares the listed frames of the spare with the active module.
    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult

    /// Stops every CPU and the DMA engine at a safe point (never inside a store) and returns how
    /// long the stop took, in nanoseconds. Until ``leaveBlackout()`` nothing writes to memory.
    func enterBlackout() throws(HardwareError) -> UInt64

    /// Resumes the CPUs and the DMA engine.
    func leaveBlackout()

    /// Sends every DMA write to both modules (on) or to the active module only (off).
    func setDMADualWrite(_ enabled: Bool)

    /// Sends every CPU store to both modules (on) or to the active module only (off). Turned on
    /// inside a blackout, so that no store sees half of the change.
    func setLockstep(_ enabled: Bool)

    /// Counts of backend events worth a summary line (page-table operations, faults), by name.
    var statistics: [String: Int] { get }

    /// Nanoseconds the callers of the copies waited for the backend's own copying threads while
    /// those were off their CPUs, since the machine started: a copy made longer because the host
    /// took a helper's core. Read around a blackout, it tells how much of its copy the host took.
    var copyThreadsOffCPUNanoseconds: UInt64 { get }

    /// The CPUs that store into the active module, numbered from 0: those the engine may slow.
    var cpuCount: Int { get }

    /// The monotonic counters of CPU `cpu` (stores, frames dirtied).
    func cpuCounters(_ cpu: Int) -> CPUCounters

    /// The active module's first byte as the CPUs see it (frame `f` at `f × frameSize` past it),
    /// for copies to a spare on another host (``SpareStore``); nil when the backend cannot give
    /// it. Read it again after a failover, which may move it.
    var activeMemory: UnsafeRawPointer? { get }

    /// Whether ``setDMATracking(_:)`` can mark the frames DMA writes dirty on this machine.
    var canTrackDMA: Bool { get }

    /// Marks every frame a DMA write touches dirty while tracking is on (on), as an IOMMU's dirty
    /// log would, or leaves DMA writes untracked (off, the default). A spare on another host
    /// cannot take a DMA dual write, so its duplex and its epochs track DMA instead. From the
    /// return on, every DMA write marks its frame.
    func setDMATracking(_ enabled: Bool)

    /// Frames the writers may dirty past a dirty limit before they notice it (each looks between
    /// batches of stores), or nil when this machine has no dirty limit: the slack a caller leaves
    /// below the bound it must keep.
    var dirtyLimitSlack: Int? { get }

    /// Holds every CPU and the DMA engine, between their batches, while `frames` or more frames
    /// are dirty, until a harvest brings the count below (0 lifts the limit): as a vCPU whose
    /// dirty ring is full waits for the harvest. Epochs of a spare on another host use it so that
    /// no epoch outgrows the staging area, whatever the writers' pace and however late the
    /// replicator's thread runs.
    func setDirtyLimit(_ frames: Int)

    /// Slows CPU `cpu` to `1 - fraction` of its pace: 0 runs it at full speed, 0.99 lets it make a
    /// hundredth of the stores it would. The CPU paces itself between batches of stores, so the
    /// store path takes no lock. The engine lifts every throttle as the blackout ends.
    func setThrottle(cpu: Int, fraction: Double)

    /// The writers' copy-on-write check for epochs to a spare on another host, or nil when this
    /// machine's writers cannot take part (a real MMU's, the emulated MMU's): then each pause
    /// copies its frames into the staging slot itself, as it always did. With it, a pause lists
    /// its frames as pending (``CopyOnWriteStaging/arm(frames:from:into:)``) and the copy follows
    /// the resume: every CPU store and DMA write to a pending frame first makes sure it is staged.
    var copyOnWriteStaging: CopyOnWriteStaging? { get }
}

extension DuplexHardware {
    /// No statistics unless the backend keeps some.
    public var statistics: [String: Int] { [:] }
    /// No copying threads but the caller's.
    public var copyThreadsOffCPUNanoseconds: UInt64 { 0 }
    /// No CPUs the engine can slow, unless the backend has some.
    public var cpuCount: Int { 0 }
    /// Nothing counted.
    public func cpuCounters(_ cpu: Int) -> CPUCounters { CPUCounters() }
    /// Nothing to slow.
    public func setThrottle(cpu: Int, fraction: Double) {}
    /// No direct view of the active module.
    public var activeMemory: UnsafeRawPointer? { nil }
    /// DMA writes cannot be tracked.
    public var canTrackDMA: Bool { false }
    /// Nothing to track.
    public func setDMATracking(_ enabled: Bool) {}
    /// No dirty limit.
    public var dirtyLimitSlack: Int? { nil }
    /// No dirty limit.
    public func setDirtyLimit(_ frames: Int) {}
    /// No copy-on-write: a pause copies its frames itself.
    public var copyOnWriteStaging: CopyOnWriteStaging? { nil }
}
