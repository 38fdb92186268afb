import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The emulated active/spare pair behind `DuplexHardware` (MirrorCore): two memory modules, CPU threads
/// running a workload into the active module, a DMA engine, dirty tracking, the blackout
/// controller and lockstep.
///
/// Create it, ``start()`` its threads, hand it to a `DuplexEngine`, and ``shutdown()`` when done.
/// Its dirty tracking is its own (a bitvector, or the dirty bits of emulated page tables) unless a
/// `DirtyTrackingFactory` for the real MMU is handed in: then the CPUs store through one mapping
/// of the active module, which that tracker watches, and the DMA engine through another, as DMA
/// bypasses the CPUs' page tables.
///
/// The modules are raw memory shared with the CPU and DMA threads by design; the protocols that
/// keep the copy exact are described on `BlackoutController`, `StripeLocks` and `LaneLayout`.
public final class EmulatedMachine: DuplexHardware {
    /// `"emulated"`, or the name of the real-MMU backend that tracks the CPUs' writes.
    public let backendName: String
    /// The geometry of both modules.
    public let geometry: MemoryGeometry
    /// The module the CPUs run on (after a failover, the former spare).
    public var active: MemoryModule { parts.modules.active }
    /// The module being brought into, or kept in, the same state (after a failover, the removed
    /// former active module until a replacement is installed in its place).
    public var spare: MemoryModule { parts.modules.spare }
    /// The workload's record of its stores, when ``Options/recordsStores`` is on.
    public let storeRecord: StoreRecord?
    /// The options the machine was built with.
    public let options: Options

    /// Whether the emulation tracks the CPUs' writes itself (a bitvector, page-table dirty bits),
    /// rather than a real MMU's tracking handed in.
    public let tracksOwnWrites: Bool
    /// The shared pieces: bitvector, tracker, controller, flags, locks, MMU.
    package let parts: MachineParts
    private let tracking: any DirtyTracking
    let writers: MachineWriters
    private let copier: ModuleCopier
    private let trace: LackeyTrace?
    private let spareBitFlip: SpareBitFlip
    let faultLog = FaultLog()

    /// Builds the machine and fills both modules: the active one with frame-distinct contents, the
    /// spare with other contents, so that a frame the copy misses shows in the verify; or, with
    /// ``Options/activeMemory`` given (a takeover), the active module from that memory, unfilled,
    /// and the spare removed from the start (the machine runs simplex). With
    /// `realMMU`, the CPUs' writes are tracked by the tracker it makes (and the emulated MMU must
    /// be off).
    public init(options: Options, realMMU: (any DirtyTrackingFactory)? = nil) throws(HardwareError) {
        self.options = options
        let frameCount = options.memorySize / options.frameSize
        guard frameCount > 0, options.memorySize % options.frameSize == 0, frameCount <= Int(UInt32.max) else {
            throw HardwareError(
                .invalidMachine, operation: "build the machine",
                message: "memory size \(options.memorySize) is not a whole number of frames below 2³²")
        }
        geometry = MemoryGeometry(frameSize: options.frameSize, frameCount: frameCount)
        let workload = options.workload
        let writerCount = options.writerCount
        if let problem = options.writerLayoutProblem {
            throw HardwareError(.invalidMachine, operation: "build the machine", message: problem)
        }
        let layout = LaneLayout(frameSize: options.frameSize, storeSize: workload.storeSize, writers: writerCount)
        if realMMU != nil && options.mmu.enabled {
            throw HardwareError(
                .invalidMachine, operation: "build the machine",
                message: "the emulated MMU does not apply when the real MMU tracks writes")
        }

        let (active, spare) = try Self.makeModules(options, sharedActive: realMMU != nil)
        let given = options.activeMemory.isGiven
        if !given {
            active.fill(seed: workload.seed)
            spare.fill(seed: ~workload.seed)
        }
        let modules = ModulePair(active: active, spare: spare, spareInstalled: !given)
        storeRecord =
            options.recordsStores ? StoreRecord(byteCount: options.memorySize, unitSize: workload.storeSize) : nil
        trace =
            workload.replaysTrace
            ? try LackeyTrace(path: workload.tracePath, frameCount: frameCount, unitSize: workload.storeSize)
            : nil

        let bitmap = TrackingBitmap(frameCount: frameCount, writers: writerCount)
        // One more per-CPU counter than CPUs: the slot of a MachineDriver, the CPU a test drives by hand.
        let tracker = DirtyTracker(bitmap: bitmap, departingHook: options.mmu.departingHook, cpus: workload.cpus + 1)
        let flags = MachineFlags()
        let locks = StripeLocks(frameCount: frameCount)
        let cpus = max(1, workload.cpus)
        let perProcess =
            frameCount / (cpus * ProcessChurn.maximumProcesses) / EmulatedMMU.pagesPerTable * EmulatedMMU.pagesPerTable
        let processPages = max(EmulatedMMU.pagesPerTable, perProcess)
        let mmu =
            options.mmu.enabled
            ? EmulatedMMU(
                frameCount: frameCount, processPages: processPages, cpus: cpus, modules: modules,
                frameSize: options.frameSize, flags: flags, locks: locks, tracker: tracker, options: options.mmu,
                keepsContents: given)
            : nil
        parts = MachineParts(
            geometry: geometry, modules: modules, bitmap: bitmap, tracker: tracker,
            controller: BlackoutController(tracksDirty: (0..<writerCount).map { $0 < workload.cpus }),
            flags: flags, locks: locks, layout: layout, mmu: mmu, processPages: processPages,
            copyOnWrite: CopyOnWriteStaging(frameCount: frameCount, frameSize: options.frameSize))
        tracksOwnWrites = realMMU == nil
        if let realMMU {
            backendName = realMMU.backendName
            tracking = try realMMU.makeTracking(
                cpuView: active.base, byteCount: options.memorySize, frameSize: options.frameSize)
        } else {
            backendName = "emulated"
            tracking = EmulatedDirtyTracking(parts: parts)
        }
        writers = MachineWriters(parts: parts, options: options, trace: trace, record: storeRecord)
        copier = ModuleCopier(modules: modules, locks: locks, frameSize: options.frameSize)
        do {
            try copier.startHelper()
        } catch {
            throw HardwareError(
                .resources, operation: "start the copy helper", message: error.description, errno: error.errno)
        }
        spareBitFlip = SpareBitFlip(armed: options.faults.flipSpareBit, seed: workload.seed)
    }

    deinit { shutdown() }

    /// The two modules for `options`: anonymous, or image files in the state directory; with
    /// `sharedActive`, the active module is shared memory mapped twice (CPUs and DMA).
    private static func makeModules(_ options: Options, sharedActive: Bool) throws(HardwareError) -> (
        MemoryModule, MemoryModule
    ) {
        let size = options.memorySize
        switch options.activeMemory {
        case .filled:
            break
        case .image(let path, let offset):
            guard !sharedActive else {
                throw HardwareError(
                    .invalidMachine, operation: "build the machine",
                    message:
                        "an image mapped private runs only on the emulation's own tracking (hardware.backend = \"emulated\")"
                )
            }
            let active = try MemoryModule(
                byteCount: size, backing: .privateImage(path: path, offset: offset), name: "active")
            return (active, try MemoryModule(byteCount: size, backing: .anonymous, name: "spare"))
        case .provided:
            let active = try MemoryModule(
                byteCount: size, backing: sharedActive ? .sharedWithAlias : .anonymous, name: "active")
            return (active, try MemoryModule(byteCount: size, backing: .anonymous, name: "spare"))
        }
        switch options.backing {
        case .anonymous:
            let active = try MemoryModule(
                byteCount: size, backing: sharedActive ? .sharedWithAlias : .anonymous, name: "active")
            return (active, try MemoryModule(byteCount: size, backing: .anonymous, name: "spare"))
        case .file:
            let dir = options.stateDirectory
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                let code = errno
                throw HardwareError(
                    .imageFile, operation: "create memory.state_dir",
                    message: "\(dir): \(String(cString: strerror(code)))", errno: code)
            }
            let active = try MemoryModule(byteCount: size, backing: .file(path: dir + "/active.img"), name: "active")
            do {
                return (
                    active, try MemoryModule(byteCount: size, backing: .file(path: dir + "/spare.img"), name: "spare")
                )
            } catch {
                // Leave no image this run made behind a failure (a full disk stays as it was).
                if active.createdImage { unlink(dir + "/active.img") }
                throw error
            }
        }
    }

    /// The trace being replayed, when the pattern is `trace`.
    public var replayedTrace: LackeyTrace? { trace }

    // MARK: - Threads

    /// Starts the CPU threads and the DMA engine.
    public func start() throws(HardwareError) {
        do {
            try writers.start()
        } catch {
            throw HardwareError(
                .resources, operation: "start the CPUs and the DMA engine", message: error.description,
                errno: error.errno)
        }
    }

    /// Stops and joins every thread (ending a blackout first if one is in force).
    public func shutdown() {
        writers.shutdown()
        copier.stopHelper()
    }

    // MARK: - DuplexHardware

    /// The running count of the tracking in use.
    public var dirtyFrameCount: Int { tracking.dirtyFrameCount }

    /// Starts tracking with every frame clean (see `DuplexHardware.startTracking()`).
    public func startTracking() throws(HardwareError) { try tracking.startTracking() }

    /// Stops tracking.
    public func stopTracking() { tracking.stopTracking() }

    /// Checks the arguments, then asks the tracking in use.
    public func harvest(
        frames: Range<Int>, flags harvestFlags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>
    ) throws(HarvestError) -> HarvestResult {
        try harvestFlags.validate()
        guard frames.lowerBound >= 0, frames.upperBound <= geometry.frameCount else {
            throw .rangeOutOfBounds(frames, frameCount: geometry.frameCount)
        }
        let get = harvestFlags.contains(.get)
        if get && output.isEmpty { throw .emptyOutput }
        return try tracking.harvest(frames: frames, get: get, clear: harvestFlags.contains(.clear), into: output)
    }

    /// Copies a range stripe by stripe with streaming stores, split with the copy helper (a full
    /// copy held at its start first when `fault.full_copy_stall` says so).
    public func copyToSpare(frames: Range<Int>) {
        if frames.lowerBound == 0 { hold(for: options.faults.fullCopyStallNanoseconds) }
        copier.copy(frames: frames)
    }

    /// Holds the calling thread `nanoseconds` (0: not at all), for the `fault.*_stall` drills.
    private func hold(for nanoseconds: UInt64) {
        guard nanoseconds > 0 else { return }
        let until = MonotonicClock.nanoseconds() + nanoseconds
        while MonotonicClock.nanoseconds() < until { usleep(1_000) }
    }

    /// Copies listed frames, runs of adjacent frames in one go, a long list split with the helper.
    public func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) { copier.copy(frameList: frameList) }

    /// Compares stripe by stripe with `memcmp`, frame by frame only where a stripe differs.
    public func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        copier.verify(frames: frames, mismatches: mismatches)
    }

    /// Compares the listed frames one by one.
    public func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>)
        -> VerifyResult
    {
        copier.verify(frameList: frameList, mismatches: mismatches)
    }

    /// Stops every CPU and the DMA engine at their next checkpoint.
    public func enterBlackout() throws(HardwareError) -> UInt64 {
        guard !parts.controller.inBlackout else {
            throw HardwareError(.blackout, operation: "enter blackout", message: "a blackout is already in force")
        }
        let stop = parts.controller.stopAll()
        for fault in faultLog.takeArmed() { try? inject(fault) }
        hold(for: options.faults.blackoutStallNanoseconds)
        return stop
    }

    /// Resumes them (firing `fault.flip_spare_bit` first when armed and lockstep is on).
    public func leaveBlackout() {
        guard parts.controller.inBlackout else { return }
        if parts.flags.lockstep.load(ordering: .relaxed) {
            spareBitFlip.fireIfArmed(spare: spare, frameSize: geometry.frameSize, frameCount: geometry.frameCount)
        }
        parts.controller.resumeAll()
    }

    /// Read by the DMA engine at each transfer.
    public func setDMADualWrite(_ enabled: Bool) {
        parts.flags.dmaDualWrite.store(enabled, ordering: .releasing)
    }

    /// Read by the CPUs at their next checkpoint (in a blackout, when they resume).
    public func setLockstep(_ enabled: Bool) {
        parts.flags.lockstep.store(enabled, ordering: .releasing)
        parts.controller.announce()
    }

    /// The active module as the CPUs see it.
    public var activeMemory: UnsafeRawPointer? { UnsafeRawPointer(active.base) }

    /// With the emulation's own tracking (the DMA engine marks the tracking bitvector); the real
    /// MMU's trackers do not see the DMA engine's writes.
    public var canTrackDMA: Bool { tracksOwnWrites }

    /// Read by the DMA engine at its checkpoints; the shootdown that follows waits for it, so
    /// from the return on every transfer marks its frames (or none does).
    public func setDMATracking(_ enabled: Bool) {
        guard tracksOwnWrites else { return }
        parts.flags.dmaTracking.store(enabled, ordering: .releasing)
        // The DMA engine, when it runs, is the writer after the CPUs.
        let dma = options.workload.cpus
        let runs = dma < options.writerCount
        if enabled && runs { parts.controller.setMarksDirty(dma, true) }
        parts.controller.synchronizeWriters()
        if !enabled && runs { parts.controller.setMarksDirty(dma, false) }
    }

    /// Each CPU's batch of stores (every store may dirty a new frame) and the DMA engine's
    /// block; nil with the emulated MMU or the real MMU, whose dirty frames the writers do not
    /// count between batches.
    public var dirtyLimitSlack: Int? {
        guard tracksOwnWrites, parts.mmu == nil else { return nil }
        return writers.dirtyLimitSlack
    }

    /// The CPUs' and the DMA engine's copy-on-write check, on the machines with a dirty limit:
    /// those whose writers mark the bitvector themselves (not through the emulated MMU's page
    /// tables or a real MMU's write protection), and so store only in the loops that check.
    public var copyOnWriteStaging: CopyOnWriteStaging? {
        dirtyLimitSlack == nil || !offersCopyOnWrite.load(ordering: .relaxed) ? nil : parts.copyOnWrite
    }

    /// Whether ``copyOnWriteStaging`` is offered where it can be (on by default; off, each pause
    /// copies its frames itself: the bench's baseline). Set before replication starts.
    package let offersCopyOnWrite = Atomic<Bool>(true)

    /// Read by the CPUs and the DMA engine at their checkpoints; the shootdown that follows waits
    /// for them, so from the return on the limit holds (but for ``dirtyLimitSlack``).
    public func setDirtyLimit(_ frames: Int) {
        guard dirtyLimitSlack != nil else { return }
        parts.flags.dirtyLimit.store(max(0, frames), ordering: .releasing)
        parts.controller.synchronizeWriters()
    }

    /// The emulated CPUs.
    public var cpuCount: Int { writers.cpuCount }

    /// CPU `cpu`'s stores, and the frames it dirtied: through the bitvector, or through the page
    /// tables with the MMU; unknown (nil) when the real MMU tracks the writes.
    public func cpuCounters(_ cpu: Int) -> CPUCounters {
        let stores = UInt64(writers.storeCounters.count(of: cpu))
        guard tracksOwnWrites else { return CPUCounters(stores: stores) }
        let dirtied = parts.bitmap.writerCount(cpu) + parts.tracker.cpuDirtied.count(of: cpu)
        return CPUCounters(stores: stores, dirtiedFrames: UInt64(max(0, dirtied)))
    }

    /// Slows CPU `cpu`: it paces itself between batches of stores.
    public func setThrottle(cpu: Int, fraction: Double) {
        writers.throttles.set(cpu, fraction)
    }

    /// The throttle in force on CPU `cpu`, as a fraction of its pace.
    public func throttle(cpu: Int) -> Double { writers.throttles.fraction(cpu) }

    /// How long copies waited for the copy helper while its thread was off its CPU.
    public var copyThreadsOffCPUNanoseconds: UInt64 { copier.helperOffCPUNanoseconds }

    /// The copy helper's thread and its last job (nil when the machine runs no helper).
    package var copyHelperSnapshot: CopyHelperSnapshot? {
        copier.copyHelper.map {
            CopyHelperSnapshot(
                threadID: $0.threadID, jobsPosted: $0.jobsPosted, lastWakeNanoseconds: $0.lastWakeNanoseconds)
        }
    }

    /// Stores made and, with the MMU, its page-table events.
    public var statistics: [String: Int] {
        var counts = parts.mmu?.statistics.snapshot ?? [:]
        counts["stores"] = storeCount
        return counts
    }

    /// Stores the CPUs have made since the machine started (counted per batch).
    public var storeCount: Int { writers.storeCount }

    // MARK: - Inspection and faults (tests, negative controls)

    /// Whether a blackout is in force.
    public var isInBlackout: Bool { parts.controller.inBlackout }

    /// Whether CPU stores currently reach both modules.
    public var isLockstep: Bool { parts.flags.lockstep.load(ordering: .acquiring) }

    /// The frame whose spare bit `fault.flip_spare_bit` flipped, if it fired.
    public var flippedSpareFrame: Int? { spareBitFlip.frame }
}
