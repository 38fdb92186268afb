import CMirrorShims
import MirrorCore
import MirrorLinux
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The emulated active/spare pair behind ``DuplexHardware``: two memory modules, CPU threads
/// running a workload into the active module, a DMA engine, the tracking bitvector, the blackout
/// controller and lockstep.
///
/// Create it, ``start()`` its threads, hand it to a ``DuplexEngine``, and ``shutdown()`` when done.
///
/// `@unchecked Sendable`: the modules are raw memory shared with the CPU and DMA threads by
/// design; every other piece of shared state is atomic, and the protocols that keep the copy
/// exact are described on ``BlackoutController``, ``StripeLocks`` and ``LaneLayout``.
public final class EmulatedMachine: DuplexHardware, @unchecked Sendable {
    /// `"emulated"`, or `"uffd"` / `"mprotect"` when the real MMU tracks the CPUs' writes.
    public let backendName: String
    /// The geometry of both modules.
    public let geometry: MemoryGeometry
    /// The module the CPUs run on.
    public let active: MemoryModule
    /// The module being brought into the same state.
    public let spare: MemoryModule

    private let configuration: MirrordConfiguration
    private let bitmap: TrackingBitmap
    private let controller: BlackoutController
    private let locks: StripeLocks
    private let flags = MachineFlags()
    private let storeCounters: StoreCounters
    private let layout: LaneLayout
    private let trace: LackeyTrace?
    private let dmaEnabled: Bool
    private let threads = Mutex<[WorkerThread]>([])
    /// The page-table churn of each CPU, handed to its thread at start.
    private let churns = Mutex<[ProcessChurn]>([])
    /// The emulated MMU, when `mmu.enabled`.
    let mmu: EmulatedMMU?
    /// The dirty tracker (the Stratus module) that owns the tracking bitvector.
    let tracker: DirtyTracker
    /// Virtual pages in each emulated process (with the MMU).
    let processPages: Int
    /// The real MMU's write tracking, with `hardware.backend = "uffd"` or `"mprotect"`.
    private let realMMU: (any PageWriteTracker)?
    /// Whether tracking is on, with the real MMU (whose CPUs never mark the bitmap).
    private let realTracking = Atomic<Bool>(false)
    /// Armed by `fault.flip_spare_bit`; fired once, when a blackout that turned lockstep on ends.
    private let flipArmed: Atomic<Bool>
    /// The frame whose bit the fault flipped, or -1.
    private let flippedFrame = Atomic<Int>(-1)

    /// Builds the machine for `configuration` (its `[memory]`, `[workload]`, `[dma]` and
    /// `[fault]` sections) and fills both modules: the active one with frame-distinct contents,
    /// the spare with other contents, so that a frame the copy misses shows in the verify.
    public convenience init(configuration: MirrordConfiguration) throws(HardwareError) {
        try self.init(configuration: configuration, mmuOptions: nil)
    }

    /// Builds the machine with MMU options that switch off parts of tracking, for negative
    /// controls in tests (nil: the defaults, with `mmu.huge_share` from the configuration).
    init(configuration: MirrordConfiguration, mmuOptions: EmulatedMMU.Options?) throws(HardwareError) {
        self.configuration = configuration
        let memory = configuration.memory
        let frameCount = memory.size / memory.frameSize
        guard frameCount <= Int(UInt32.max) else {
            throw HardwareError(operation: "build the machine", message: "memory.size has more frames than 2³²")
        }
        geometry = MemoryGeometry(frameSize: memory.frameSize, frameCount: frameCount)

        let workload = configuration.workload
        dmaEnabled = configuration.dma.rate.bytesPerSecond != 0
        let writers = workload.cpus + (dmaEnabled ? 1 : 0)
        layout = LaneLayout(frameSize: memory.frameSize, storeSize: workload.storeSize, writers: writers)
        guard writers <= layout.unitsPerFrame else {
            throw HardwareError(
                operation: "build the machine",
                message: "\(writers) writers (workload.cpus plus the DMA engine) need at least as many units of "
                    + "workload.store_size (\(workload.storeSize) B) in a \(memory.frameSize) B frame; lower workload.store_size")
        }

        backendName = configuration.hardware.backend.rawValue
        switch memory.backing {
        case .anonymous where configuration.hardware.backend != .emulated:
            // The CPUs write through one view (tracked by the real MMU), the DMA engine through
            // another that no write-protection covers, as DMA bypasses the CPUs' page tables.
            active = try MemoryModule(byteCount: memory.size, backing: .sharedWithAlias, name: "active")
            spare = try MemoryModule(byteCount: memory.size, backing: .anonymous, name: "spare")
        case .anonymous:
            active = try MemoryModule(byteCount: memory.size, backing: .anonymous, name: "active")
            spare = try MemoryModule(byteCount: memory.size, backing: .anonymous, name: "spare")
        case .file:
            let dir = memory.stateDirectory
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                throw HardwareError(operation: "create memory.state_dir", message: "\(dir): \(String(cString: strerror(errno)))")
            }
            active = try MemoryModule(byteCount: memory.size, backing: .file(path: dir + "/active.img"), name: "active")
            spare = try MemoryModule(byteCount: memory.size, backing: .file(path: dir + "/spare.img"), name: "spare")
        }
        active.fill(seed: workload.seed)
        spare.fill(seed: ~workload.seed)

        trace = workload.pattern == .trace
            ? try LackeyTrace(path: workload.trace, frameCount: frameCount, unitSize: workload.storeSize)
            : nil
        bitmap = TrackingBitmap(frameCount: frameCount, writers: writers)
        controller = BlackoutController(tracksDirty: (0..<writers).map { $0 < workload.cpus })
        locks = StripeLocks(frameCount: frameCount)
        flipArmed = Atomic(configuration.fault.flipSpareBit)
        tracker = DirtyTracker(bitmap: bitmap, departingHook: configuration.tracking.departingHook)
        storeCounters = StoreCounters(cpus: workload.cpus)
        switch configuration.hardware.backend {
        case .emulated: realMMU = nil
        case .uffd: realMMU = try UffdWriteTracker(base: active.base, byteCount: memory.size, frameSize: memory.frameSize)
        case .mprotect: realMMU = try MprotectWriteTracker(base: active.base, byteCount: memory.size, frameSize: memory.frameSize)
        }

        let cpus = max(1, workload.cpus)
        let perProcess = frameCount / (cpus * ProcessChurn.maximumProcesses) / EmulatedMMU.pagesPerTable * EmulatedMMU.pagesPerTable
        processPages = max(EmulatedMMU.pagesPerTable, perProcess)
        if configuration.mmu.enabled && realMMU == nil {
            var options = mmuOptions ?? EmulatedMMU.Options()
            if mmuOptions == nil { options.hugeShare = configuration.mmu.hugeShare }
            let regions = processPages / EmulatedMMU.pagesPerTable
            let pgdEntries = (processPages + EmulatedMMU.pagesPerPGDEntry - 1) / EmulatedMMU.pagesPerPGDEntry
            // Room for every process's tables twice over (copies made by copy-on-write breaks and splits).
            let tables = cpus * ProcessChurn.maximumProcesses * (regions + pgdEntries + 1) * 2 + 64
            let mmu = EmulatedMMU(
                frameCount: frameCount, tableCapacity: tables, active: active, spare: spare, flags: flags,
                locks: locks, tracker: tracker, options: options)
            self.mmu = mmu
            let perCPURate = workload.churn / Double(cpus)
            churns.withLock { churns in
                churns = (0..<workload.cpus).map { cpu in
                    ProcessChurn(mmu: mmu, cpu: cpu, pageCount: processPages, operationsPerSecond: perCPURate,
                                 seed: workload.seed &+ UInt64(cpu))
                }
            }
        } else {
            mmu = nil
        }
    }

    deinit { shutdown() }

    /// The trace being replayed, when the pattern is `trace`.
    public var replayedTrace: LackeyTrace? { trace }

    // MARK: - Threads

    /// Starts the CPU threads and the DMA engine.
    public func start() {
        threads.withLock { threads in
            guard threads.isEmpty else { return }
            let workload = configuration.workload
            let frameShift = geometry.frameSize.trailingZeroBitCount
            let perCPU = workload.rate.bytesPerSecond.map { max(1, $0 / max(1, workload.cpus)) }
            let storesPerBatch = perCPU.map { max(16, min(4096, $0 / workload.storeSize / 2_000)) } ?? 256
            for index in 0..<workload.cpus {
                let cpu = EmulatedCPU(
                    index: index, active: active.base, spare: spare.base, frameShift: frameShift,
                    storeWords: workload.storeSize / 8, bitmap: bitmap, controller: controller, flags: flags,
                    bytesPerSecond: perCPU, storesPerBatch: storesPerBatch, seed: workload.seed &+ UInt64(index),
                    stores: storeCounters)
                let stream = makeStream(cpu: index)
                if let mmu {
                    let churn = churns.withLock { $0[index] }
                    threads.append(WorkerThread(name: "mirrord-cpu\(index)") { stream.run(on: cpu, mmu: mmu, churn: churn) })
                } else {
                    threads.append(WorkerThread(name: "mirrord-cpu\(index)") { stream.run(on: cpu) })
                }
            }
            if dmaEnabled {
                let dma = DMAEngine(
                    writer: workload.cpus, active: active.alias, spare: spare.base, frameShift: frameShift,
                    frameCount: geometry.frameCount, blockFrames: configuration.dma.blockSize / geometry.frameSize,
                    layout: layout, controller: controller, locks: locks, flags: flags,
                    bytesPerSecond: configuration.dma.rate.bytesPerSecond, seed: workload.seed)
                threads.append(WorkerThread(name: "mirrord-dma") { dma.run() })
            }
        }
    }

    /// Stops and joins every thread (ending a blackout first if one is in force).
    public func shutdown() {
        let running = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        guard !running.isEmpty else { return }
        flags.shutdown.store(true, ordering: .releasing)
        if controller.inBlackout { controller.resumeAll() } else { controller.announce() }
        for thread in running { thread.join() }
    }

    private func makeStream(cpu: Int) -> AnyStoreStream {
        let workload = configuration.workload
        // With the MMU, patterns pick virtual pages of the CPU's processes; without, frames.
        let frames = mmu == nil ? geometry.frameCount : processPages
        let laneUnits = layout.unitCount(lane: cpu)
        var random = WyRandom(seed: workload.seed &* 0x100_0000_01B3 &+ UInt64(cpu))
        switch workload.pattern {
        case .uniform:
            return .uniform(UniformStream(random: random, frames: frames, lane: cpu, laneUnits: laneUnits, layout: layout))
        case .hotset:
            let hotCount = max(1, Int(Double(frames) * workload.hotFraction))
            // Every CPU draws the same hot set: the seed picks its place.
            var placement = WyRandom(seed: workload.seed)
            let hotStart = scaled(placement.next(), frames - hotCount + 1)
            _ = random.next()
            return .hotset(HotSetStream(
                random: random, frames: frames, hotStart: hotStart, hotCount: hotCount,
                hotThreshold: UInt64(workload.hotShare * 4_294_967_296.0), lane: cpu, laneUnits: laneUnits, layout: layout))
        case .sequential:
            let start = frames * cpu / max(1, workload.cpus)
            return .sequential(SequentialStream(frame: start, frames: frames, lane: cpu, laneUnits: laneUnits, layout: layout))
        case .trace:
            let trace = trace!
            let start = trace.stores.count * cpu / max(1, workload.cpus)
            return .trace(TraceStream(trace: trace, position: start, lane: cpu, layout: layout, frames: frames))
        }
    }

    // MARK: - DuplexHardware

    /// The running count of the bitvector, or a scan of the real MMU's written pages.
    public var dirtyFrameCount: Int { realMMU?.writtenCount() ?? bitmap.dirtyCount }

    /// Starts tracking with every frame clean (see ``DuplexHardware/startTracking()``).
    public func startTracking() throws(HardwareError) {
        if let realMMU {
            try realMMU.protectAll()
            realTracking.store(true, ordering: .releasing)
            return
        }
        flags.tracking.store(false, ordering: .releasing)
        tracker.setActive(false)
        controller.synchronizeWriters()
        // Every frame starts clean (the full copy follows): hardware dirty bits move to SOFTDIRTY.
        mmu?.cleanAllDirtyBits()
        bitmap.reset()
        tracker.setActive(true)
        flags.tracking.store(true, ordering: .releasing)
        controller.synchronizeWriters()
    }

    /// Stops tracking (and, with the real MMU, removes the write-protection).
    public func stopTracking() {
        if let realMMU, realTracking.exchange(false, ordering: .acquiringAndReleasing) {
            realMMU.unprotectAll()
        }
        flags.tracking.store(false, ordering: .releasing)
        tracker.setActive(false)
        controller.announce()
    }

    /// Moves page-table dirty bits into the bitvector (with the MMU), then harvests it; or asks the real MMU.
    public func harvest(
        frames: Range<Int>, flags harvestFlags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>
    ) throws(HarvestError) -> HarvestResult {
        try harvestFlags.validate()
        guard frames.lowerBound >= 0, frames.upperBound <= geometry.frameCount else {
            throw .rangeOutOfBounds(frames, frameCount: geometry.frameCount)
        }
        let get = harvestFlags.contains(.get)
        let clear = harvestFlags.contains(.clear)
        if get && output.isEmpty { throw .emptyOutput }
        if let realMMU {
            guard realTracking.load(ordering: .acquiring) else { throw .trackingInactive }
            // The kernel write-protects and flushes the TLBs itself: no shootdown of ours.
            do {
                return try realMMU.harvest(frames: frames, get: get, clear: clear, into: output)
            } catch {
                throw .hardwareFailure("\(error)")
            }
        }
        guard flags.tracking.load(ordering: .acquiring) else { throw .trackingInactive }
        // The Stratus walk: page-table dirty bits of frames in range join the tracking bitvector.
        let clearedEntries = mmu?.harvestDirtyBits(frames, clear: clear) ?? 0
        let result = bitmap.harvest(frames, get: get, clear: clear, into: output)
        if (result.cleared > 0 || clearedEntries > 0) && !controller.inBlackout {
            // The shootdown: stores before the clear are visible to the copy that follows.
            controller.synchronizeWriters()
        }
        return result
    }

    /// Copies a range stripe by stripe with streaming stores; a range of many stripes is split
    /// between this thread and a helper, since one thread does not reach the memory bandwidth.
    public func copyToSpare(frames: Range<Int>) {
        let stripes = (frames.count + StripeLocks.framesPerStripe - 1) / StripeLocks.framesPerStripe
        guard stripes >= 8 else { return copyStripes(frames) }
        let middle = frames.lowerBound + stripes / 2 * StripeLocks.framesPerStripe
        let helper = WorkerThread(name: "mirrord-copy") { self.copyStripes(middle..<frames.upperBound) }
        copyStripes(frames.lowerBound..<middle)
        helper.join()
    }

    private func copyStripes(_ frames: Range<Int>) {
        var frame = frames.lowerBound
        while frame < frames.upperBound {
            let stripe = StripeLocks.stripe(of: frame)
            let end = min(frames.upperBound, (stripe + 1) * StripeLocks.framesPerStripe)
            copyRun(frame, end, stripe: stripe)
            frame = end
        }
    }

    /// Copies listed frames, runs of adjacent frames in one go; a long list is split between
    /// this thread and a helper (in a blackout the CPUs are stopped and their cores idle).
    public func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        guard frameList.count >= 512 else { return copyList(frameList) }
        let middle = frameList.count / 2
        // The helper is joined before this returns, so the caller's buffer outlives it; it is
        // handed over as an address because buffer pointers are not Sendable.
        let address = UInt(bitPattern: frameList.baseAddress! + middle)
        let count = frameList.count - middle
        let helper = WorkerThread(name: "mirrord-copy") {
            self.copyList(UnsafeBufferPointer(start: UnsafePointer<UInt32>(bitPattern: address), count: count))
        }
        copyList(UnsafeBufferPointer(rebasing: frameList[..<middle]))
        helper.join()
    }

    private func copyList(_ frameList: UnsafeBufferPointer<UInt32>) {
        var i = 0
        let n = frameList.count
        while i < n {
            let first = Int(frameList[i])
            let stripe = StripeLocks.stripe(of: first)
            let stripeEnd = (stripe + 1) * StripeLocks.framesPerStripe
            var end = first + 1
            i += 1
            while i < n, Int(frameList[i]) == end, end < stripeEnd {
                end += 1
                i += 1
            }
            copyRun(first, end, stripe: stripe)
        }
    }

    /// Copies frames `first..<end` of one stripe under its lock: streaming stores for runs of
    /// 64 KiB or more (bulk copies), `memcpy` for short runs (the final copy's scattered frames).
    @inline(__always)
    private func copyRun(_ first: Int, _ end: Int, stripe: Int) {
        let shift = geometry.frameSize.trailingZeroBitCount
        let offset = first << shift
        let bytes = (end - first) << shift
        locks.lock(stripe)
        if bytes >= 64 << 10 {
            mirrord_copy_streaming(spare.base + offset, active.base + offset, bytes)
        } else {
            memcpy(spare.base + offset, active.base + offset, bytes)
        }
        locks.unlock(stripe)
    }

    /// Compares stripe by stripe with `memcmp`, frame by frame only where a stripe differs.
    public func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        var result = VerifyResult()
        let shift = geometry.frameSize.trailingZeroBitCount
        var frame = frames.lowerBound
        while frame < frames.upperBound {
            let end = min(frames.upperBound, frame + StripeLocks.framesPerStripe)
            let offset = frame << shift
            if memcmp(spare.base + offset, active.base + offset, (end - frame) << shift) != 0 {
                for f in frame..<end { compare(f, into: mismatches, &result) }
                result.checked -= end - frame
            }
            result.checked += end - frame
            frame = end
        }
        return result
    }

    /// Compares the listed frames one by one.
    public func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>)
        -> VerifyResult
    {
        var result = VerifyResult()
        for frame in frameList { compare(Int(frame), into: mismatches, &result) }
        return result
    }

    @inline(__always)
    private func compare(_ frame: Int, into mismatches: UnsafeMutableBufferPointer<UInt32>, _ result: inout VerifyResult) {
        let offset = frame << geometry.frameSize.trailingZeroBitCount
        result.checked += 1
        if memcmp(spare.base + offset, active.base + offset, geometry.frameSize) != 0 {
            result.mismatches += 1
            if result.reported < mismatches.count {
                mismatches[result.reported] = UInt32(frame)
                result.reported += 1
            }
        }
    }

    /// Stops every CPU and the DMA engine at their next checkpoint.
    public func enterBlackout() throws(HardwareError) -> UInt64 {
        guard !controller.inBlackout else {
            throw HardwareError(operation: "enter blackout", message: "a blackout is already in force")
        }
        return controller.stopAll()
    }

    /// Resumes them (firing `fault.flip_spare_bit` first when armed and lockstep is on).
    public func leaveBlackout() {
        guard controller.inBlackout else { return }
        if flags.lockstep.load(ordering: .relaxed), flipArmed.exchange(false, ordering: .relaxed) {
            flipSpareBit()
        }
        controller.resumeAll()
    }

    /// Read by the DMA engine at each transfer.
    public func setDMADualWrite(_ enabled: Bool) {
        flags.dmaDualWrite.store(enabled, ordering: .releasing)
    }

    /// Read by the CPUs at their next checkpoint (in a blackout, when they resume).
    public func setLockstep(_ enabled: Bool) {
        flags.lockstep.store(enabled, ordering: .releasing)
        controller.announce()
    }

    /// Stores made and, with the MMU, its page-table events.
    public var statistics: [String: Int] {
        var counts = mmu?.statistics.snapshot ?? [:]
        counts["stores"] = storeCount
        return counts
    }

    /// Stores the CPUs have made since the machine started (counted per batch).
    public var storeCount: Int {
        (0..<configuration.workload.cpus).reduce(0) { $0 + storeCounters.count(of: $1) }
    }

    // MARK: - Inspection and faults (tests, negative controls)

    /// Whether CPU stores currently reach both modules.
    public var isLockstep: Bool { flags.lockstep.load(ordering: .acquiring) }

    /// The frame whose spare bit `fault.flip_spare_bit` flipped, if it fired.
    public var flippedSpareFrame: Int? {
        let frame = flippedFrame.load(ordering: .acquiring)
        return frame < 0 ? nil : frame
    }

    /// Flips one bit of the spare in a frame chosen by the seed (the `fault.flip_spare_bit` fault).
    private func flipSpareBit() {
        var random = WyRandom(seed: configuration.workload.seed ^ 0xF11B)
        let frame = scaled(random.next(), geometry.frameCount)
        let byte = spare.base.advanced(by: frame * geometry.frameSize + 7).assumingMemoryBound(to: UInt8.self)
        byte.pointee ^= 0x10
        flippedFrame.store(frame, ordering: .releasing)
    }
}

/// The workload streams, closed over so that each CPU thread runs a loop specialised for its pattern.
private enum AnyStoreStream: Sendable {
    case uniform(UniformStream)
    case hotset(HotSetStream)
    case sequential(SequentialStream)
    case trace(TraceStream)

    func run(on cpu: EmulatedCPU) {
        switch self {
        case .uniform(let s): cpu.run(s)
        case .hotset(let s): cpu.run(s)
        case .sequential(let s): cpu.run(s)
        case .trace(let s): cpu.run(s)
        }
    }

    func run(on cpu: EmulatedCPU, mmu: EmulatedMMU, churn: ProcessChurn) {
        switch self {
        case .uniform(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .hotset(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .sequential(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        case .trace(let s): cpu.runWithMMU(s, mmu: mmu, churn: churn)
        }
    }
}
