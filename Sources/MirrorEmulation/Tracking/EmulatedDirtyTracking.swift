import MirrorCore

/// The emulation's own dirty tracking: the CPUs mark the tracking bitvector as they store, or,
/// with the emulated MMU, set the hardware dirty bits of page-table entries, which the Stratus
/// tracker's walk moves into the bitvector at each harvest.
///
/// A harvest that clears anything is followed by the emulation's TLB shootdown (every running
/// CPU acknowledges) unless the machine is blacked out, so that every store made before the clear
/// is visible to the copy that follows.
final class EmulatedDirtyTracking: DirtyTracking {
    private let bitmap: TrackingBitmap
    private let tracker: DirtyTracker
    private let mmu: EmulatedMMU?
    private let controller: BlackoutController
    private let flags: MachineFlags

    init(parts: MachineParts) {
        bitmap = parts.bitmap
        tracker = parts.tracker
        mmu = parts.mmu
        controller = parts.controller
        flags = parts.flags
    }

    var isTracking: Bool { flags.tracking.load(ordering: .acquiring) }

    /// The running count of the bitvector, plus the frames dirty only in page tables: exactly
    /// the frames a harvest of everything would report.
    var dirtyFrameCount: Int { bitmap.dirtyCount + (mmu?.dirtyFrames(outside: bitmap) ?? 0) }

    func startTracking() throws(HardwareError) {
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

    func stopTracking() {
        flags.tracking.store(false, ordering: .releasing)
        tracker.setActive(false)
        controller.announce()
    }

    /// Moves page-table dirty bits into the bitvector (with the MMU), then harvests it.
    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError) -> HarvestResult
    {
        guard isTracking else { throw .trackingInactive }
        // The Stratus walk: page-table dirty bits of frames in range join the tracking bitvector.
        let clearedEntries = mmu?.harvestDirtyBits(frames, clear: clear) ?? 0
        let result = bitmap.harvest(frames, get: get, clear: clear, into: output)
        if (result.cleared > 0 || clearedEntries > 0) && !controller.inBlackout {
            // The shootdown: stores before the clear are visible to the copy that follows.
            controller.synchronizeWriters()
        }
        return result
    }
}
