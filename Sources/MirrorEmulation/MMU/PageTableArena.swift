import Synchronization

/// The memory of every emulated page table: fixed-size tables of 512 atomic 64-bit entries in one
/// raw allocation, with a reference count per table (a PTE table shared copy-on-write after fork
/// has a count above one) and a free list. No per-table Swift objects.
///
/// `@unchecked Sendable`: entries are only touched through `Atomic`; the reference counts and the
/// free list only under ``EmulatedMMU``'s lock.
final class PageTableArena: @unchecked Sendable {
    /// Entries in one table, as on x86-64.
    static let entriesPerTable = 512

    /// How many tables the arena holds.
    let capacity: Int
    private let entries: UnsafeMutablePointer<Atomic<UInt64>>
    /// One bit a table: set after a dirty bit was set in one of its entries, taken by the
    /// harvest walk, which skips tables without it (a PTE table with no new dirty entry).
    private let hints: UnsafeMutablePointer<Atomic<UInt64>>
    private let hintWords: Int
    private var references: [Int32]
    private var free: [Int32]

    init(capacity: Int) {
        self.capacity = capacity
        let count = capacity * Self.entriesPerTable
        entries = .allocate(capacity: count)
        for i in 0..<count { (entries + i).initialize(to: Atomic(0)) }
        hintWords = (capacity + 63) / 64
        hints = .allocate(capacity: hintWords)
        for i in 0..<hintWords { (hints + i).initialize(to: Atomic(0)) }
        references = Array(repeating: 0, count: capacity)
        free = (0..<Int32(capacity)).reversed()
    }

    deinit {
        entries.deinitialize(count: capacity * Self.entriesPerTable)
        entries.deallocate()
        hints.deinitialize(count: hintWords)
        hints.deallocate()
    }

    /// Notes that an entry of `table` became dirty. Called after the dirty bit is set.
    @inline(__always)
    func hintDirty(_ table: Int) {
        let bit: UInt64 = 1 &<< UInt64(table & 63)
        let word = hints + (table &>> 6)
        if word.pointee.load(ordering: .relaxed) & bit == 0 {
            word.pointee.bitwiseOr(bit, ordering: .releasing)
        }
    }

    /// Whether `table` may hold a dirty entry; with `take`, clears the hint (before the caller
    /// scans the table, so a dirty bit set during the scan leaves the hint set again).
    @inline(__always)
    func mayBeDirty(_ table: Int, take: Bool) -> Bool {
        let bit: UInt64 = 1 &<< UInt64(table & 63)
        let word = hints + (table &>> 6)
        guard word.pointee.load(ordering: .acquiring) & bit != 0 else { return false }
        if take { word.pointee.bitwiseAnd(~bit, ordering: .acquiringAndReleasing) }
        return true
    }

    /// The `index`-th entry of `table`.
    @inline(__always)
    func entry(_ table: Int, _ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entries + (table &* Self.entriesPerTable &+ index)
    }

    /// Tables in use.
    var used: Int { capacity - free.count }

    /// A zeroed table with one reference, or nil when the arena is full. Under the MMU lock.
    func allocate() -> Int? {
        guard let table = free.popLast() else { return nil }
        references[Int(table)] = 1
        return Int(table)
    }

    /// Adds a reference (a second address space shares the table). Under the MMU lock.
    func retain(_ table: Int) { references[table] += 1 }

    /// The references to `table`.
    func referenceCount(_ table: Int) -> Int { Int(references[table]) }

    /// Drops a reference; at zero the table is cleared and freed. Returns whether it was freed.
    @discardableResult
    func release(_ table: Int) -> Bool {
        references[table] -= 1
        guard references[table] == 0 else { return false }
        for i in 0..<Self.entriesPerTable { entry(table, i).pointee.store(0, ordering: .relaxed) }
        free.append(Int32(table))
        return true
    }
}
