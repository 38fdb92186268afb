/// One entry of an emulated x86-64-style page table, as its 64-bit word.
///
/// The same layout serves all three levels: a pgd entry points to a pmd table, a pmd entry to a
/// PTE table or (with ``huge``) straight to 512 frames, a PTE to one frame.
struct PageTableEntry: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The mapping is valid.
    static let present: UInt64 = 1 << 0
    /// Stores may go through it; clear for copy-on-write frames.
    static let writable: UInt64 = 1 << 1
    /// Set by the CPU on the first store through it: the hardware dirty bit.
    static let dirty: UInt64 = 1 << 6
    /// A pmd entry mapping 512 frames at once (a 2 MiB page).
    static let huge: UInt64 = 1 << 7
    /// The Stratus SOFTDIRTY bit (bit 9): where tracking moves a hardware dirty bit it clears, so
    /// that the operating system's view of "dirty" (hardware or soft) never changes.
    static let softDirty: UInt64 = 1 << 9
    /// A pmd entry whose PTE table is shared copy-on-write with another address space (fork):
    /// the table is write-protected and the first store through it breaks the sharing.
    static let sharedTable: UInt64 = 1 << 10
    static let numberShift: UInt64 = 12
    static let numberMask: UInt64 = ((1 << 40) - 1) << 12

    /// An entry pointing to frame (or table) `number` with `flags`.
    init(number: Int, flags: UInt64) {
        rawValue = UInt64(number) << Self.numberShift | flags
    }

    /// The frame (PTE, huge pmd) or table (pgd, pmd) the entry points to.
    var number: Int { Int((rawValue & Self.numberMask) >> Self.numberShift) }

    var isPresent: Bool { rawValue & Self.present != 0 }
    var isWritable: Bool { rawValue & Self.writable != 0 }
    var isDirty: Bool { rawValue & Self.dirty != 0 }
    var isHuge: Bool { rawValue & Self.huge != 0 }
    var isSoftDirty: Bool { rawValue & Self.softDirty != 0 }
    var isSharedTable: Bool { rawValue & Self.sharedTable != 0 }

    /// Dirty as the operating system sees it: hardware or soft (the Stratus patch's `pte_dirty`).
    var isDirtyForOS: Bool { rawValue & (Self.dirty | Self.softDirty) != 0 }

    /// The frames the entry maps: one, or 512 for a huge pmd entry.
    var frameCount: Int { isHuge ? PageTableArena.entriesPerTable : 1 }
}
