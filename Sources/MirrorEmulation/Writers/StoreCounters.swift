import Synchronization

/// How many stores each emulated CPU has made, one counter a CPU on its own cache line, added to
/// once per batch: the throughput figure of the store-path benchmark.
final class StoreCounters: @unchecked Sendable {
    // @unchecked: the counters are `Atomic` in storage owned here.
    private static let stride = 64
    private let storage: UnsafeMutableRawPointer
    private let cpus: Int

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

    /// Adds `count` stores of `cpu` (called only by that CPU's thread).
    @inline(__always)
    func add(_ count: Int, cpu: Int) {
        let c = counter(cpu)
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ count, ordering: .relaxed)
    }

    /// The stores of `cpu` so far.
    func count(of cpu: Int) -> Int { counter(cpu).pointee.load(ordering: .relaxed) }
}
