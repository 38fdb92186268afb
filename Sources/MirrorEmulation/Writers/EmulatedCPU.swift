import MirrorCore

/// One emulated CPU: a thread that runs a workload's stores into the active module, marking each
/// frame dirty while tracking is on and storing to the spare too in lockstep.
///
/// The store path is a handful of instructions on raw memory: the pattern's next address, the
/// store itself (8-byte words), and the check of the dirty bit; a frame found clean is noted and
/// its bit set after the batch (see ``TrackingBitmap``). Everything else (marking, flags,
/// blackout, shootdown, pacing) happens between batches of stores.
struct EmulatedCPU: @unchecked Sendable {
    /// Stores between checkpoints of an unthrottled CPU: a checkpoint (one load) every ~256 stores.
    static let unlimitedBatch = 256
    /// Batches a second of a rate-limited CPU, so that it paces itself smoothly.
    static let batchesPerSecond = 2_000
    /// The fewest and the most stores in a rate-limited CPU's batch.
    static let minimumBatch = 16
    static let maximumBatch = 4_096

    // @unchecked: the raw module pointers are shared on purpose; see ``MemoryModule``.
    let index: Int
    /// The modules, whose addresses the CPU reads when it starts and at each checkpoint.
    let modules: ModulePair
    let frameShift: Int
    let storeWords: Int
    let bitmap: TrackingBitmap
    let controller: BlackoutController
    let flags: MachineFlags
    /// Bytes a second for this CPU, or nil for no limit.
    let bytesPerSecond: Int?
    let storesPerBatch: Int
    let seed: UInt64
    /// Where the CPU counts its stores (once per batch).
    let stores: WriterCounters
    /// Where the engine sets the CPU's throttle (read once per batch).
    let throttles: ThrottleTable
    /// The workload's record of the last value stored in each unit, when kept (``StoreRecord``).
    let record: UnsafeMutablePointer<UInt64>?
    /// log2 of the unit size.
    let storeShift: Int
    /// The check that an epoch's pending frame is staged before a store writes it: looked at once
    /// a batch, and at each store's frame only while an epoch's frames are pending.
    let copyOnWrite: CopyOnWriteStaging

    /// The value before a CPU of seed `seed` makes its first store: store `n` (1-based) writes
    /// `valueBase + n`.
    static func valueBase(seed: UInt64) -> UInt64 { seed &* 0x9E37_79B9_7F4A_7C15 }

    /// The seed of CPU `cpu` of a workload of seed `workload`.
    static func seed(workload: UInt64, cpu: Int) -> UInt64 { workload &+ UInt64(cpu) }

    /// One store: `value` into every word of the unit at `byte`, in the active module and, in
    /// lockstep, in the spare.
    @inline(__always)
    private func store(_ value: UInt64, at byte: Int, lockstep: Bool, into memory: Memory) {
        let a = (memory.active + byte).assumingMemoryBound(to: UInt64.self)
        for w in 0..<storeWords { a[w] = value }
        if lockstep {
            let s = (memory.spare + byte).assumingMemoryBound(to: UInt64.self)
            for w in 0..<storeWords { s[w] = value }
        }
        if let record { record[byte &>> storeShift] = value }
    }

    /// The addresses a CPU stores to, read at checkpoints (a failover swaps them in a blackout).
    struct Memory {
        var active: UnsafeMutableRawPointer
        var spare: UnsafeMutableRawPointer

        init(_ modules: ModulePair) {
            active = modules.active.base
            spare = modules.spare.base
        }
    }

    /// Runs stores from `stream` until the machine shuts down.
    func run<S: StoreStream>(_ stream: S) {
        var stream = stream
        // The frames of a batch found clean, marked dirty together after its stores.
        let marks = UnsafeMutablePointer<UInt32>.allocate(capacity: storesPerBatch)
        defer { marks.deallocate() }
        var seen: UInt64 = 0
        controller.unpark(index, seen: &seen)
        var memory = Memory(modules)
        var tracking = flags.tracking.load(ordering: .acquiring)
        var lockstep = flags.lockstep.load(ordering: .acquiring)
        var limit = flags.dirtyLimit.load(ordering: .acquiring)
        var value = Self.valueBase(seed: seed)
        var pacer = RatePacer(bytesPerBatch: storesPerBatch * storeWords * 8, bytesPerSecond: bytesPerSecond)

        while true {
            if controller.epoch != seen {
                if controller.checkpoint(index, seen: &seen) { pacer.restartBatch() }
                if flags.shutdown.load(ordering: .acquiring) { break }
                memory = Memory(modules)
                tracking = flags.tracking.load(ordering: .acquiring)
                lockstep = flags.lockstep.load(ordering: .acquiring)
                limit = flags.dirtyLimit.load(ordering: .acquiring)
            }
            if tracking {
                // Looked at after the checkpoint: armed only in a pause, so a batch that began
                // unarmed ends before the next one arms.
                let clean =
                    copyOnWrite.isArmed
                    ? trackedBatch(
                        &stream, value: &value, marks: marks, lockstep: lockstep, memory: memory, checking: true)
                    : trackedBatch(
                        &stream, value: &value, marks: marks, lockstep: lockstep, memory: memory, checking: false)
                if clean > 0 { bitmap.markDirty(marks, count: clean, writer: index) }
            } else {
                for _ in 0..<storesPerBatch {
                    let (frame, offset) = stream.next()
                    value &+= 1
                    store(value, at: frame &<< frameShift | offset, lockstep: lockstep, into: memory)
                }
            }
            stores.add(storesPerBatch, cpu: index)
            // Counted first: a pause taken while it waits at the limit sees this batch's stores.
            if limit > 0 && tracking
                && DirtyLimit.hold(
                    index, limit: limit, bitmap: bitmap, controller: controller, flags: flags, seen: &seen)
            {
                pacer.restartBatch()
                if flags.shutdown.load(ordering: .acquiring) { break }
                memory = Memory(modules)
                tracking = flags.tracking.load(ordering: .acquiring)
                lockstep = flags.lockstep.load(ordering: .acquiring)
                limit = flags.dirtyLimit.load(ordering: .acquiring)
                continue
            }
            if pacer.pace(
                index, controller: controller, seen: &seen, throttle: { throttles.fraction(index) },
                shuttingDown: { flags.shutdown.load(ordering: .relaxed) })
            {
                if flags.shutdown.load(ordering: .acquiring) { break }
                memory = Memory(modules)
                tracking = flags.tracking.load(ordering: .acquiring)
                lockstep = flags.lockstep.load(ordering: .acquiring)
                limit = flags.dirtyLimit.load(ordering: .acquiring)
            }
        }
        controller.park(index)
    }

    /// One batch of tracked stores from `stream`, each preceded, when `checking`, by the
    /// copy-on-write check of its frame; the frames found clean are listed in `marks`. Returns
    /// how many.
    @inline(__always)
    private func trackedBatch<S: StoreStream>(
        _ stream: inout S, value: inout UInt64, marks: UnsafeMutablePointer<UInt32>, lockstep: Bool, memory: Memory,
        checking: Bool
    ) -> Int {
        var clean = 0
        let check = copyOnWrite.check
        for _ in 0..<storesPerBatch {
            let (frame, offset) = stream.next()
            if checking { check.beforeWrite(frame) }
            value &+= 1
            store(value, at: frame &<< frameShift | offset, lockstep: lockstep, into: memory)
            if !bitmap.isMarked(frame) {
                marks[clean] = UInt32(truncatingIfNeeded: frame)
                clean &+= 1
            }
        }
        return clean
    }

    /// Runs stores from `stream` through the emulated MMU until the machine shuts down: each
    /// store's page is translated (through the translation cache, or a page walk that sets the
    /// hardware dirty bit, or a fault), and `churn` edits page tables between batches.
    func runWithMMU<S: StoreStream>(_ stream: S, mmu: EmulatedMMU, churn: ProcessChurn) {
        var stream = stream
        var churn = churn
        var random = WyRandom(seed: seed ^ 0xFA_017)
        let cache = TranslationCache()
        var seen: UInt64 = 0
        controller.unpark(index, seen: &seen)
        var memory = Memory(modules)
        var lockstep = flags.lockstep.load(ordering: .acquiring)
        var value = Self.valueBase(seed: seed)
        var pacer = RatePacer(bytesPerBatch: storesPerBatch * storeWords * 8, bytesPerSecond: bytesPerSecond)
        var turn = 0

        while true {
            if controller.epoch != seen {
                if controller.checkpoint(index, seen: &seen) { pacer.restartBatch() }
                if flags.shutdown.load(ordering: .acquiring) { break }
                memory = Memory(modules)
                lockstep = flags.lockstep.load(ordering: .acquiring)
                cache.flush()
            }
            let processes = churn.processes
            guard !processes.isEmpty else { break }
            let space = processes[turn % processes.count]
            turn &+= 1
            var dropped = 0
            var made = 0
            var slowPath = false
            while made < storesPerBatch {
                made &+= 1
                let (page, offset) = stream.next()
                var frame = cache.lookup(space: space.id, page: page)
                if frame == nil {
                    slowPath = true
                    frame = mmu.translateForWrite(space, page: page, writer: index)
                    if frame == nil {
                        cache.flush()
                        if mmu.resolveWriteFault(space, page: page, random: random.next()) {
                            frame = mmu.translateForWrite(space, page: page, writer: index)
                        }
                    }
                    if let frame { cache.insert(space: space.id, page: page, frame: frame) }
                }
                if let frame {
                    value &+= 1
                    store(value, at: frame &<< frameShift | offset, lockstep: lockstep, into: memory)
                } else {
                    dropped += 1  // out of memory: the store is dropped
                }
                // A page walk costs a fraction of a microsecond and a fault (a copy-on-write copy, a
                // frame zeroed) microseconds; after a fork or a flushed translation cache a batch
                // of 4,096 stores may take one at every store, milliseconds: once a store has, a
                // blackout asked for ends the batch, so that the stop waits for one, not a batch.
                if slowPath && controller.epoch != seen { break }
            }
            stores.add(made - dropped, cpu: index)
            if churn.run(now: MonotonicClock.nanoseconds(), interrupted: { controller.epoch != seen }) { cache.flush() }
            if pacer.pace(
                index, controller: controller, seen: &seen, throttle: { throttles.fraction(index) },
                shuttingDown: { flags.shutdown.load(ordering: .relaxed) })
            {
                if flags.shutdown.load(ordering: .acquiring) { break }
                memory = Memory(modules)
                lockstep = flags.lockstep.load(ordering: .acquiring)
                cache.flush()
            }
        }
        controller.park(index)
    }
}
