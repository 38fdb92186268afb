import Synchronization

/// One monotonic counter a writer (an emulated CPU, or the DMA engine), each on its own cache line
/// and added to only by its writer's thread, so that counting costs the store path no shared
/// write: the stores each CPU made (added once per batch, before the CPU's next checkpoint or
/// park, so exact while it is stopped at one), the DMA engine's transfers, or the frames each CPU
/// dirtied through the page tables.
final class WriterCounters: Sendable {
    private let counters: PaddedAtomics<Int>

    /// Counters for `cpus` writers, all zero.
    init(cpus: Int) {
        counters = PaddedAtomics(count: cpus, initial: 0)
    }

    /// Adds `count` to `cpu`'s counter (called only by that CPU's thread).
    @inline(__always)
    func add(_ count: Int, cpu: Int) {
        let c = counters.word(cpu)
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ count, ordering: .relaxed)
    }

    /// The count of `cpu` so far.
    func count(of cpu: Int) -> Int { counters.word(cpu).pointee.load(ordering: .relaxed) }
}
