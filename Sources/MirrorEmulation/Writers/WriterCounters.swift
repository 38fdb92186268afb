import Synchronization

/// One monotonic counter a writer (an emulated CPU), each on its own cache line and added to only
/// by its writer's thread, so that counting costs the store path no shared write: the stores each
/// CPU made (added once per batch), or the frames each CPU dirtied through the page tables.
final class WriterCounters: @unchecked Sendable {
    // @unchecked: the counters are `Atomic` in storage owned here.
    private static let stride = 64
    private let storage: UnsafeMutableRawPointer
    private let cpus: Int

    /// Counters for `cpus` writers, all zero.
    init(cpus: Int) {
        self.cpus = cpus
        storage = .allocate(byteCount: max(1, cpus) * Self.stride, alignment: 64)
        for i in 0..<cpus { counter(i).initialize(to: Atomic(0)) }
    }

    deinit {
        for i in 0..<cpus { counter(i).deinitialize(count: 1) }
        storage.deallocate()
    }

    private func counter(_ cpu: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (storage + cpu * Self.stride).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// Adds `count` to `cpu`'s counter (called only by that CPU's thread).
    @inline(__always)
    func add(_ count: Int, cpu: Int) {
        let c = counter(cpu)
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ count, ordering: .relaxed)
    }

    /// The count of `cpu` so far.
    func count(of cpu: Int) -> Int { counter(cpu).pointee.load(ordering: .relaxed) }
}
