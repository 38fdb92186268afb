import MirrorCore

/// One emulated CPU: a thread that runs a workload's stores into the active module, marking each
/// frame dirty while tracking is on and storing to the spare too in lockstep.
///
/// The store path is a handful of instructions on raw memory: the pattern's next address, the
/// store itself (8-byte words), and the check-before-set of the dirty bit. Everything else
/// (flags, blackout, shootdown, pacing) happens between batches of stores.
struct EmulatedCPU: @unchecked Sendable {
    // @unchecked: the raw module pointers are shared on purpose; see ``MemoryModule``.
    let index: Int
    let active: UnsafeMutableRawPointer
    let spare: UnsafeMutableRawPointer
    let frameShift: Int
    let storeWords: Int
    let bitmap: TrackingBitmap
    let controller: BlackoutController
    let flags: MachineFlags
    /// Bytes a second for this CPU, or nil for no limit.
    let bytesPerSecond: Int?
    let storesPerBatch: Int
    let seed: UInt64

    /// Runs stores from `stream` until the machine shuts down.
    func run<S: StoreStream>(_ stream: S) {
        var stream = stream
        var seen: UInt64 = 0
        controller.checkpoint(index, seen: &seen)
        var tracking = flags.tracking.load(ordering: .acquiring)
        var lockstep = flags.lockstep.load(ordering: .acquiring)
        var value = seed &* 0x9E37_79B9_7F4A_7C15
        var pacer = RatePacer(bytesPerBatch: storesPerBatch * storeWords * 8, bytesPerSecond: bytesPerSecond)

        while true {
            if controller.epoch != seen {
                controller.checkpoint(index, seen: &seen)
                if flags.shutdown.load(ordering: .acquiring) { break }
                tracking = flags.tracking.load(ordering: .acquiring)
                lockstep = flags.lockstep.load(ordering: .acquiring)
            }
            for _ in 0..<storesPerBatch {
                let (frame, offset) = stream.next()
                let byte = frame &<< frameShift | offset
                value &+= 1
                let a = (active + byte).assumingMemoryBound(to: UInt64.self)
                for w in 0..<storeWords { a[w] = value }
                if lockstep {
                    let s = (spare + byte).assumingMemoryBound(to: UInt64.self)
                    for w in 0..<storeWords { s[w] = value }
                }
                if tracking { bitmap.markDirty(frame, writer: index) }
            }
            if pacer.pace(index, controller: controller, seen: &seen) {
                if flags.shutdown.load(ordering: .acquiring) { break }
                tracking = flags.tracking.load(ordering: .acquiring)
                lockstep = flags.lockstep.load(ordering: .acquiring)
            }
        }
        controller.park(index)
    }
}
