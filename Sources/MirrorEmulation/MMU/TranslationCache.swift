/// A CPU's cache of store translations (its TLB): page → frame for pages whose entry is writable
/// and already dirty, so that a hit stores without touching the page tables.
///
/// Like a real TLB it must be flushed when an entry it may hold changes: the CPU flushes it after
/// its own page-table edits, and at every checkpoint that follows a shootdown (a harvest that
/// cleared dirty bits or split a huge page).
struct TranslationCache: ~Copyable {
    static let slots = 256
    private let tags: UnsafeMutablePointer<UInt64>
    private let frames: UnsafeMutablePointer<Int>

    init() {
        tags = .allocate(capacity: Self.slots)
        frames = .allocate(capacity: Self.slots)
        tags.initialize(repeating: .max, count: Self.slots)
        frames.initialize(repeating: 0, count: Self.slots)
    }

    deinit {
        tags.deallocate()
        frames.deallocate()
    }

    @inline(__always)
    private static func tag(_ space: Int, _ page: Int) -> UInt64 { UInt64(space) << 32 | UInt64(page) }

    /// The cached frame of `page` in address space `space`, or nil.
    @inline(__always)
    func lookup(space: Int, page: Int) -> Int? {
        let slot = page & (Self.slots - 1)
        return tags[slot] == Self.tag(space, page) ? frames[slot] : nil
    }

    /// Caches a translation.
    @inline(__always)
    func insert(space: Int, page: Int, frame: Int) {
        let slot = page & (Self.slots - 1)
        tags[slot] = Self.tag(space, page)
        frames[slot] = frame
    }

    /// Drops every translation.
    func flush() {
        tags.update(repeating: .max, count: Self.slots)
    }
}
