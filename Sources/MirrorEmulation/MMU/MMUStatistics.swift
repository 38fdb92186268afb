import Synchronization

/// Counts of the page-table events the emulated MMU went through, for tests and summaries: a
/// churn test that never forked proves nothing about fork.
final class MMUStatistics: Sendable {
    let maps = Atomic<Int>(0)
    let hugeMaps = Atomic<Int>(0)
    let unmaps = Atomic<Int>(0)
    let remaps = Atomic<Int>(0)
    let forks = Atomic<Int>(0)
    let exits = Atomic<Int>(0)
    let tableCopies = Atomic<Int>(0)
    let frameCopies = Atomic<Int>(0)
    let splits = Atomic<Int>(0)

    /// Adds one to `counter`.
    static func count(_ counter: borrowing Atomic<Int>) {
        counter.add(1, ordering: .relaxed)
    }

    /// Every count by name.
    var snapshot: [String: Int] {
        [
            "maps": maps.load(ordering: .relaxed), "huge_maps": hugeMaps.load(ordering: .relaxed),
            "unmaps": unmaps.load(ordering: .relaxed), "remaps": remaps.load(ordering: .relaxed),
            "forks": forks.load(ordering: .relaxed), "exits": exits.load(ordering: .relaxed),
            "table_copies": tableCopies.load(ordering: .relaxed), "frame_copies": frameCopies.load(ordering: .relaxed),
            "splits": splits.load(ordering: .relaxed),
        ]
    }
}
