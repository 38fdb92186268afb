#if canImport(Glibc)
import Glibc
#endif

/// The emulated kernel's whole-frame writes: zero-filling a frame it hands out and copying a frame
/// (copy-on-write, migration). Each is a write the dirty tracker must see, and each covers the
/// DMA engine's bytes too, so it takes the stripe locks a DMA transfer takes: in lockstep a
/// transfer landing between the two modules' writes would otherwise leave them different for good.
struct KernelFrameWriter: Sendable {
    let modules: ModulePair
    let flags: MachineFlags
    let locks: StripeLocks
    let tracker: DirtyTracker
    let frameSize: Int

    /// Zero-fills `frame` (in both modules in lockstep) and records the write.
    func zero(_ frame: Int) {
        let active = modules.active
        let spare = modules.spare
        let stripe = StripeLocks.stripe(of: frame)
        locks.lock(stripe)
        memset(active.base + frame * frameSize, 0, frameSize)
        if flags.lockstep.load(ordering: .acquiring) { memset(spare.base + frame * frameSize, 0, frameSize) }
        locks.unlock(stripe)
        tracker.trackPhysical(frame)
    }

    /// Copies frame `source` to `target` (in both modules in lockstep) under the stripe locks of
    /// both frames, lower stripe first, and records the write.
    func copy(from source: Int, to target: Int) {
        let active = modules.active
        let spare = modules.spare
        let low = min(StripeLocks.stripe(of: source), StripeLocks.stripe(of: target))
        let high = max(StripeLocks.stripe(of: source), StripeLocks.stripe(of: target))
        locks.lock(low)
        if high != low { locks.lock(high) }
        memcpy(active.base + target * frameSize, active.base + source * frameSize, frameSize)
        if flags.lockstep.load(ordering: .acquiring) {
            memcpy(spare.base + target * frameSize, spare.base + source * frameSize, frameSize)
        }
        if high != low { locks.unlock(high) }
        locks.unlock(low)
        tracker.trackPhysical(target)
    }
}
