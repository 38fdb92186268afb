/// The emulation's dirty limit, as a vCPU whose dirty ring is full waits for the harvest (KVM's
/// dirty-limit): a writer that finds, between its batches, `limit` or more frames dirty parks
/// until a harvest brings the count below it. Parked, it is no part of a blackout's stop or a
/// shootdown; waking, it passes its checkpoint (and stops there if a blackout is in force).
///
/// A writer checks only after a batch, so the count can pass the limit by what each writer's
/// batch dirties (``EmulatedMachine/dirtyLimitSlack``).
enum DirtyLimit {
    /// How long a parked writer sleeps before it looks at the count again.
    static let recheckNanoseconds: UInt64 = 20_000

    /// Parks `writer` while `limit` or more frames are dirty (and the limit and the machine
    /// last); returns whether it parked, so that the caller reloads what a blackout may have
    /// changed meanwhile.
    @inline(__always)
    static func hold(
        _ writer: Int, limit: Int, bitmap: TrackingBitmap, controller: BlackoutController, flags: MachineFlags,
        seen: inout UInt64
    ) -> Bool {
        guard limit > 0, bitmap.dirtyCount >= limit else { return false }
        controller.park(writer)
        while bitmap.dirtyCount >= limit && flags.dirtyLimit.load(ordering: .relaxed) > 0
            && !flags.shutdown.load(ordering: .relaxed)
        {
            sleepNanoseconds(recheckNanoseconds)
        }
        controller.unpark(writer, seen: &seen)
        return true
    }
}
