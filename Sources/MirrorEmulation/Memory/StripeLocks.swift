import CMirrorShims
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Spinlocks over 2 MiB stripes of memory that make a copy to the spare and a DMA dual-write of
/// the same bytes take turns.
///
/// Without them a copy could read a line of the active module, a DMA transfer write the line to
/// both modules, and the copy then write the stale line to the spare: DMA sets no dirty bit, so
/// nothing would copy the line again. (Stratus hardware serialises the two in its memory
/// controller.) CPU stores never take these locks.
final class StripeLocks: @unchecked Sendable {
    // @unchecked: the words are only touched through `Atomic`.
    /// Frames per stripe (2 MiB of 4 KiB frames).
    static let framesPerStripe = 512
    /// Spins before a waiter yields the core.
    private static let spinsBeforeYield = 128
    private let locks: UnsafeMutablePointer<Atomic<UInt32>>
    let count: Int

    /// Creates one lock per stripe of a module of `frameCount` frames.
    init(frameCount: Int) {
        count = (frameCount + Self.framesPerStripe - 1) / Self.framesPerStripe
        locks = .allocate(capacity: count)
        for i in 0..<count { (locks + i).initialize(to: Atomic(0)) }
    }

    deinit {
        locks.deinitialize(count: count)
        locks.deallocate()
    }

    /// The stripe that holds `frame`.
    @inline(__always)
    static func stripe(of frame: Int) -> Int { frame / framesPerStripe }

    /// Takes the lock of `stripe`, spinning (and yielding the core after a while).
    @inline(__always)
    func lock(_ stripe: Int) {
        var spins = 0
        while !locks[stripe].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            spins += 1
            if spins < Self.spinsBeforeYield { mirrord_cpu_relax() } else { sched_yield() }
        }
    }

    /// Releases the lock of `stripe`.
    @inline(__always)
    func unlock(_ stripe: Int) {
        locks[stripe].store(0, ordering: .releasing)
    }
}
