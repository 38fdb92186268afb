import MirrorCore

/// The emulated DMA engine: a thread writing blocks into memory at a set rate, with no dirty bit
/// (DMA bypasses the CPU's page tables), to both modules when dual-write is on; with DMA tracking
/// on (a spare on another host), it marks each frame it wrote dirty, as an IOMMU's dirty log does.
///
/// A transfer takes the stripe lock of its block, so that it never interleaves with a copy of the
/// same bytes, and the blackout stops the engine between transfers. The tracking flags are read
/// at checkpoints, as the CPUs read theirs, so a shootdown that waits for the engine's
/// acknowledgement knows it has seen them.
struct DMAEngine: @unchecked Sendable {
    // @unchecked: the raw module pointers are shared on purpose; see ``MemoryModule``.
    let writer: Int
    /// The modules, whose addresses the engine reads at each checkpoint (DMA writes the active
    /// module through its alias: no CPU page table covers it).
    let modules: ModulePair
    let frameShift: Int
    let frameCount: Int
    let blockFrames: Int
    let layout: LaneLayout
    let controller: BlackoutController
    let locks: StripeLocks
    let flags: MachineFlags
    /// Where a tracked transfer marks its frames.
    let bitmap: TrackingBitmap
    let bytesPerSecond: Int?
    let seed: UInt64
    /// The workload's record of the last value stored in each unit, when kept (``StoreRecord``).
    let record: UnsafeMutablePointer<UInt64>?

    /// Runs transfers until the machine shuts down.
    func run() {
        var random = WyRandom(seed: seed ^ 0xD3A_D3A)
        var seen: UInt64 = 0
        controller.unpark(writer, seen: &seen)
        let laneUnits = layout.unitCount(lane: writer)
        let words = layout.storeSize / 8
        let blocks = max(1, frameCount / blockFrames)
        let bytesPerBlock = blockFrames * laneUnits * layout.storeSize
        var pacer = RatePacer(bytesPerBatch: bytesPerBlock, bytesPerSecond: bytesPerSecond)
        var active = modules.active.alias
        var spare = modules.spare.base
        var value = seed | 1 << 63
        var marking = marks()
        var limit = flags.dirtyLimit.load(ordering: .acquiring)

        while !flags.shutdown.load(ordering: .acquiring) {
            if controller.epoch != seen {
                controller.checkpoint(writer, seen: &seen)
                active = modules.active.alias
                spare = modules.spare.base
                marking = marks()
                limit = flags.dirtyLimit.load(ordering: .acquiring)
                continue
            }
            let first = scaled(random.next(), blocks) * blockFrames
            let stripe = StripeLocks.stripe(of: first)
            value &+= 1
            locks.lock(stripe)
            let dual = flags.dmaDualWrite.load(ordering: .relaxed)
            for frame in first..<(first + blockFrames) {
                for index in 0..<laneUnits {
                    let byte = frame &<< frameShift | layout.unit(lane: writer, index: index) &<< layout.storeShift
                    let a = (active + byte).assumingMemoryBound(to: UInt64.self)
                    for w in 0..<words { a[w] = value }
                    if dual {
                        let s = (spare + byte).assumingMemoryBound(to: UInt64.self)
                        for w in 0..<words { s[w] = value }
                    }
                    if let record { record[byte &>> layout.storeShift] = value }
                }
                if marking { bitmap.markDirtyShared(frame) }
            }
            locks.unlock(stripe)
            if marking && limit > 0
                && DirtyLimit.hold(
                    writer, limit: limit, bitmap: bitmap, controller: controller, flags: flags, seen: &seen)
            {
                active = modules.active.alias
                spare = modules.spare.base
                marking = marks()
                limit = flags.dirtyLimit.load(ordering: .acquiring)
                continue
            }
            if pacer.pace(writer, controller: controller, seen: &seen) {
                // It slept parked, perhaps through a blackout that swapped the modules.
                active = modules.active.alias
                spare = modules.spare.base
                marking = marks()
                limit = flags.dirtyLimit.load(ordering: .acquiring)
            }
        }
        controller.park(writer)
    }

    /// Whether transfers mark their frames dirty now: DMA tracking on and tracking active.
    private func marks() -> Bool {
        flags.dmaTracking.load(ordering: .acquiring) && flags.tracking.load(ordering: .acquiring)
    }
}
