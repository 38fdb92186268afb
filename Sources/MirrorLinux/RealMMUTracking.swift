import MirrorCore
import Synchronization

/// ``DirtyTracking`` by the real MMU: a ``PageWriteMechanism`` armed and disarmed with tracking,
/// its failures turned into harvest errors. The kernel write-protects and flushes the TLBs
/// itself, so no shootdown of ours is needed.
final class RealMMUTracking<Mechanism: PageWriteMechanism>: DirtyTracking {
    private let mechanism: Mechanism
    private let armed = Atomic<Bool>(false)

    init(_ mechanism: Mechanism) {
        self.mechanism = mechanism
    }

    var isTracking: Bool { armed.load(ordering: .acquiring) }

    /// Pages written since they were last protected.
    var dirtyFrameCount: Int { mechanism.writtenCount() }

    func startTracking() throws(HardwareError) {
        try mechanism.protectAll()
        armed.store(true, ordering: .releasing)
    }

    func stopTracking() {
        if armed.exchange(false, ordering: .acquiringAndReleasing) { mechanism.unprotectAll() }
    }

    func harvest(frames: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError) -> HarvestResult
    {
        guard isTracking else { throw .trackingInactive }
        do {
            return try mechanism.harvest(frames: frames, get: get, clear: clear, into: output)
        } catch {
            throw .hardwareFailure(error)
        }
    }
}
