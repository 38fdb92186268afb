import Synchronization

/// The pieces of one copy shared by two threads that start at opposite ends: the caller takes
/// pieces from the front, the helper from the back, until they meet. Far apart, the two threads
/// work in different stripes (no contention on a stripe lock) and each reads its memory in order;
/// either can end up doing every piece, so a helper that comes late costs nothing.
///
/// Both ends live in one atomic word (front in the low 32 bits, back in the high 32 bits), so a
/// piece is claimed with one compare-exchange and never by both threads.
struct SharedPieces: ~Copyable, Sendable {
    private let ends = Atomic<UInt64>(0)

    init() {}

    /// Starts a copy of `count` pieces (the previous one is over).
    func reset(count: Int) {
        precondition(count >= 0 && count < 1 << 32)
        ends.store(UInt64(count) << 32, ordering: .relaxed)
    }

    /// The next piece from the front, or nil when the ends have met.
    func claimFront() -> Int? {
        var current = ends.load(ordering: .relaxed)
        while true {
            let front = current & 0xFFFF_FFFF
            let back = current >> 32
            guard front < back else { return nil }
            let (exchanged, original) = ends.compareExchange(
                expected: current, desired: back << 32 | (front + 1), ordering: .relaxed)
            if exchanged { return Int(front) }
            current = original
        }
    }

    /// The next piece from the back, or nil when the ends have met.
    func claimBack() -> Int? {
        var current = ends.load(ordering: .relaxed)
        while true {
            let front = current & 0xFFFF_FFFF
            let back = current >> 32
            guard front < back else { return nil }
            let (exchanged, original) = ends.compareExchange(
                expected: current, desired: (back - 1) << 32 | front, ordering: .relaxed)
            if exchanged { return Int(back - 1) }
            current = original
        }
    }
}
