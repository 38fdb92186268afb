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
    /// Where the engine counts its transfers (slot ``writer``, after the CPUs'), one a transfer
    /// before its next checkpoint, so that the count is exact while it is stopped at one.
    let transfers: WriterCounters
    /// The workload's record of the last value stored in each unit, when kept (``StoreRecord``).
    let record: UnsafeMutablePointer<UInt64>?
    /// The check that an epoch's pending frame is staged before a transfer writes it (read once a
    /// transfer; see ``CopyOnWriteStaging``).
    let copyOnWrite: CopyOnWriteStaging

    /// Runs transfers until the machine shuts down.
    func run() {
        var random = Self.blockRandom(seed: seed)
        var seen: UInt64 = 0
        controller.unpark(writer, seen: &seen)
        let laneUnits = layout.unitCount(lane: writer)
        let words = layout.storeSize / 8
        let blocks = max(1, frameCount / blockFrames)
        let bytesPerBlock = blockFrames * laneUnits * layout.storeSize
        var pacer = RatePacer(bytesPerBatch: bytesPerBlock, bytesPerSecond: bytesPerSecond)
        var active = modules.active.alias
        var spare = modules.spare.base
        var value = Self.valueBase(seed: seed)
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
            let first = Self.block(random.next(), blocks: blocks) * blockFrames
            let stripe = StripeLocks.stripe(of: first)
            value &+= 1
            locks.lock(stripe)
            let dual = flags.dmaDualWrite.load(ordering: .relaxed)
            let checking = copyOnWrite.isArmed
            for frame in first..<(first + blockFrames) {
                if checking { copyOnWrite.beforeWrite(frame) }
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
            transfers.add(1, cpu: writer)
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

    /// The generator that picks the blocks of a machine of workload seed `seed`.
    static func blockRandom(seed: UInt64) -> WyRandom { WyRandom(seed: seed ^ 0xD3A_D3A) }

    /// The value before the first transfer's: transfer `n` (1-based) writes `valueBase + n`.
    static func valueBase(seed: UInt64) -> UInt64 { seed | 1 << 63 }

    /// The block of `blocks` a transfer drawing `bits` writes.
    @inline(__always)
    static func block(_ bits: UInt64, blocks: Int) -> Int { scaled(bits, blocks) }

    /// Whether transfers mark their frames dirty now: DMA tracking on and tracking active.
    private func marks() -> Bool {
        flags.dmaTracking.load(ordering: .acquiring) && flags.tracking.load(ordering: .acquiring)
    }
}
