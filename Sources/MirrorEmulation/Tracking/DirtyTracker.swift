import Synchronization

/// The Stratus page-tracking module of the emulation: it keeps the per-frame tracking bitvector
/// (with its running count) up to date from the page tables, and subscribes as an MMU notifier to
/// every address space so that a mapping going away (unmap, remap, copy-on-write break, exit)
/// does not take its dirty bit with it: the departing entry's frames are recorded.
///
/// Its *tracking functions* (what is done with a departing entry and with a kernel write to a
/// frame) are replaceable, as in the seed, but only while tracking is inactive.
package final class DirtyTracker: MMUNotifier, Sendable {
    /// What the tracker does with a departing entry and with a frame the kernel wrote.
    struct Functions: Sendable {
        /// Called with each departing page-table entry (the seed's `do_mm_track_pte`/`_pmd`).
        var trackEntry: @Sendable (PageTableEntry) -> Void
        /// Called with each frame the kernel writes directly (the seed's `do_mm_track_phys`).
        var trackPhysical: @Sendable (Int) -> Void
    }

    /// Why the tracking functions could not be replaced.
    struct ActiveError: Error, CustomStringConvertible {
        var description: String { "tracking functions can be replaced only while tracking is inactive" }
    }

    package let bitmap: TrackingBitmap
    /// Whether departing entries are recorded (`tracking.departing_hook`; off only as a negative
    /// control).
    let departingHook: Bool
    private let active = Atomic<Bool>(false)
    private let functions: Mutex<Functions>

    init(bitmap: TrackingBitmap, departingHook: Bool) {
        self.bitmap = bitmap
        self.departingHook = departingHook
        functions = Mutex(Self.defaultFunctions(bitmap))
    }

    /// The seed's defaults: mark the frames of a dirty departing entry, and any written frame.
    static func defaultFunctions(_ bitmap: TrackingBitmap) -> Functions {
        Functions(
            trackEntry: { entry in
                guard entry.isPresent, entry.isDirty else { return }
                for frame in entry.number..<(entry.number + entry.frameCount) { bitmap.markDirtyShared(frame) }
                bitmap.adjustShared(-1)  // the entry's own dirty bit, counted when the CPU set it, is gone
            },
            trackPhysical: { frame in bitmap.markDirtyShared(frame) })
    }

    /// Whether tracking is on.
    var isActive: Bool { active.load(ordering: .acquiring) }

    /// Turns tracking on or off.
    func setActive(_ on: Bool) { active.store(on, ordering: .releasing) }

    /// Replaces the tracking functions; refused while tracking is active.
    func replaceFunctions(_ new: Functions) throws(ActiveError) {
        guard !isActive else { throw ActiveError() }
        functions.withLock { $0 = new }
    }

    // MARK: The running count, kept by the page tables' events

    /// A CPU's page walk set a hardware dirty bit (one more dirty entry, counted on the CPU's
    /// own counter).
    @inline(__always)
    func dirtyBitSet(writer: Int) {
        bitmap.adjust(1, writer: writer)
    }

    /// `count` more dirty entries exist because entries were copied (fork, a table copy, a huge
    /// page split into 512).
    func dirtyEntriesCopied(_ count: Int) {
        bitmap.adjustShared(count)
    }

    /// The harvest walk found `frame` dirty in a page table: it joins the bitvector.
    func recordHarvested(_ frame: Int) {
        bitmap.markDirty(frame, writer: bitmap.harvesterSlot)
    }

    /// The harvest walk cleared one entry's hardware dirty bit.
    func dirtyBitCleared() {
        bitmap.adjust(-1, writer: bitmap.harvesterSlot)
    }

    // MARK: Departing entries and kernel writes

    /// Records a departing entry (the `set_pte`/`ptep_get_and_clear` hook).
    func trackEntry(_ entry: PageTableEntry) {
        guard isActive, departingHook else { return }
        functions.withLock { $0 }.trackEntry(entry)
    }

    /// Records a frame written by the kernel (zero-fill, copy-on-write copy, migration).
    package func trackPhysical(_ frame: Int) {
        guard isActive else { return }
        functions.withLock { $0 }.trackPhysical(frame)
    }

    // MARK: MMUNotifier

    func invalidatePage(_ space: AddressSpace, page: Int, departing: PageTableEntry) {
        trackEntry(departing)
    }

    func invalidateRange(_ space: AddressSpace, pages: Range<Int>, departing: [(page: Int, entry: PageTableEntry)]) {
        for (_, entry) in departing { trackEntry(entry) }
    }

    func release(_ space: AddressSpace) {}
}
