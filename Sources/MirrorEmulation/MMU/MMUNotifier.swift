import Synchronization

/// A secondary observer of an address space's mappings, in the spirit of Linux's MMU notifiers
/// (the MMU-notifier post in docs/architecture.md's sources): KVM shadow tables, an IOMMU, or the
/// dirty tracker. It is told, before the memory behind a mapping can be reused, that the mapping
/// went away, with the entry as it was, so that it can drop its own copy of the translation or
/// keep the entry's dirty state.
protocol MMUNotifier: AnyObject, Sendable {
    /// One page's mapping went away (unmap, remap to another frame, copy-on-write break);
    /// `departing` is the entry as it was (a huge entry covers 512 frames).
    func invalidatePage(_ space: AddressSpace, page: Int, departing: PageTableEntry)
    /// The mappings of `pages` went away; `departing` lists each present entry with its page.
    func invalidateRange(_ space: AddressSpace, pages: Range<Int>, departing: [(page: Int, entry: PageTableEntry)])
    /// The address space is gone (process exit), after its last invalidations.
    func release(_ space: AddressSpace)
}

/// The subscribers of one address space, called in the order they registered. Registering or
/// unregistering needs no change to the MMU: it only walks this list.
final class MMUNotifierRegistry: Sendable {
    private let subscribers = Mutex<[any MMUNotifier]>([])

    /// Adds `notifier` after the existing subscribers.
    func register(_ notifier: any MMUNotifier) {
        subscribers.withLock { $0.append(notifier) }
    }

    /// Removes `notifier`; it is told nothing more.
    func unregister(_ notifier: any MMUNotifier) {
        subscribers.withLock { $0.removeAll { $0 === notifier } }
    }

    /// The subscribers, in registration order.
    var all: [any MMUNotifier] { subscribers.withLock { $0 } }

    func invalidatePage(_ space: AddressSpace, page: Int, departing: PageTableEntry) {
        for s in all { s.invalidatePage(space, page: page, departing: departing) }
    }

    func invalidateRange(_ space: AddressSpace, pages: Range<Int>, departing: [(page: Int, entry: PageTableEntry)]) {
        for s in all { s.invalidateRange(space, pages: pages, departing: departing) }
    }

    func release(_ space: AddressSpace) {
        for s in all { s.release(space) }
    }
}
