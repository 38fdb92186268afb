import Synchronization

/// One atomic word per CPU, each on a cache line of its own, so that a CPU updating its word never
/// shares a line with another CPU's: the storage of the per-CPU throttles (``ThrottleTable``) and
/// counters (``WriterCounters``).
///
/// `@unchecked Sendable`: every word is an `Atomic` in storage this object owns, initialized in
/// `init` and deinitialized in `deinit`; nothing else is mutable.
final class PaddedAtomics<Value: AtomicRepresentable>: @unchecked Sendable {
    /// Bytes between two words: one cache line.
    private static var stride: Int { 64 }
    private let storage: UnsafeMutableRawPointer
    /// The number of words.
    let count: Int

    /// `count` words, each `initial`.
    init(count: Int, initial: Value) {
        self.count = count
        storage = .allocate(byteCount: max(1, count) * Self.stride, alignment: Self.stride)
        for i in 0..<count { word(i).initialize(to: Atomic(initial)) }
    }

    deinit {
        for i in 0..<count { word(i).deinitialize(count: 1) }
        storage.deallocate()
    }

    /// Word `i` (0 ≤ i < ``count``).
    @inline(__always)
    func word(_ i: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        (storage + i * Self.stride).assumingMemoryBound(to: Atomic<Value>.self)
    }
}
