/// An emulated process's address space: a three-level page table (pgd → pmd → pte, 512 entries a
/// level) mapping its virtual pages to frames of the active module, and the MMU notifiers
/// subscribed to it.
///
/// `@unchecked Sendable`: the page-table words are atomic; `regions` changes only under
/// ``EmulatedMMU``'s lock.
final class AddressSpace: @unchecked Sendable {
    /// The address-space id (tags translation-cache entries).
    let id: Int
    /// The pgd table in the arena.
    let pgd: Int
    /// Virtual pages `0..<pageCount` may be mapped.
    let pageCount: Int
    /// The CPU that runs it.
    let cpu: Int
    /// Its MMU notifier subscribers.
    let notifiers = MMUNotifierRegistry()
    /// The 2 MiB regions (512 pages) that are mapped, for churn to pick from.
    var regions: Set<Int> = []

    init(id: Int, pgd: Int, pageCount: Int, cpu: Int) {
        self.id = id
        self.pgd = pgd
        self.pageCount = pageCount
        self.cpu = cpu
    }

    /// Regions (2 MiB of virtual space) in the address space.
    var regionCount: Int { pageCount / PageTableArena.entriesPerTable }
}
