import Synchronization

/// The Stratus page-tracking module of the emulation: it keeps the per-frame tracking bitvector
/// (with its running count) up to date from the page tables, and subscribes as an MMU notifier to
/// every address space so that a mapping going away (unmap, remap, copy-on-write break, exit)
/// does not take its dirty bit with it: the departing entry's frames are recorded.
///
/// Its *tracking functions* (what is done with a departing entry and with a kernel write to a
/// frame) are replaceable, as in the Stratus page-tracking patch, but only while tracking is inactive.
package final class DirtyTracker: MMUNotifier, Sendable {
    /// What the tracker does with a departing entry and with a frame the kernel wrote.
    struct Functions: Sendable {
        /// Called with each departing page-table entry (the Stratus patch's `do_mm_track_pte`/`_pmd`).
        var trackEntry: @Sendable (PageTableEntry) -> Void
        /// Called with each frame the kernel writes directly (the Stratus patch's `do_mm_track_phys`).
        var trackPhysical: @Sendable (Int) -> Void
    }

    /// Why the tracking functions could not be replaced.
    struct ActiveError: Error, CustomStringConvertible {
        var description: String { "tracking functions can be replaced only while tracking is inactive" }
    }

    package let bitmap: TrackingBitmap
    /// Frames each CPU dirtied through the page tables (clean → dirty entries), for dirty rates.
    let cpuDirtied: WriterCounters
    /// Whether departing entries are recorded (`tracking.departing_hook`; off only as a negative
    /// control).
    let departingHook: Bool
    private let active = Atomic<Bool>(false)
    private let functions: Mutex<Functions>

    init(bitmap: TrackingBitmap, departingHook: Bool, cpus: Int) {
        self.bitmap = bitmap
        cpuDirtied = WriterCounters(cpus: cpus)
        self.departingHook = departingHook
        functions = Mutex(Self.defaultFunctions(bitmap))
    }

    /// The Stratus patch's defaults: mark the frames of a dirty departing entry, and any written frame.
    static func defaultFunctions(_ bitmap: TrackingBitmap) -> Functions {
        Functions(
            trackEntry: { entry in
                guard entry.isPresent, entry.isDirty else { return }
                for frame in entry.number..<(entry.number + entry.frameCount) { bitmap.markDirtyShared(frame) }
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

    // MARK: The page tables' events

    /// A CPU's page walk set the hardware dirty bit of an entry mapping `frames` frames: counted
    /// on the CPU's own counter, for its dirty rate (the running count is taken from the page
    /// tables themselves, see ``EmulatedMMU/dirtyFrames(outside:)``).
    @inline(__always)
    func dirtyBitSet(writer: Int, frames: Int) {
        cpuDirtied.add(frames, cpu: writer)
    }

    /// The harvest walk found `frame` dirty in a page table: it joins the bitvector.
    func recordHarvested(_ frame: Int) {
        bitmap.markDirty(frame, writer: bitmap.harvesterSlot)
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
