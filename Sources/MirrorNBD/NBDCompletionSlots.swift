import CNBD

/// One write request in flight: where it goes, so a failure names its range, and its place in the
/// free list. libnbd's completion callback receives a pointer to it as `user_data`.
struct NBDCompletionSlot {
    /// The request's offset in the export.
    var offset: UInt64 = 0
    /// The request's length in bytes.
    var length: Int = 0
    /// The next free slot's index while this one is free, -1 at the end of the list.
    var nextFree: Int32 = -1
    /// This slot's own index, pushed back on the free list when the request completes.
    var index: Int32 = 0
    /// The tally every slot of the pipeline reports to.
    var tally: UnsafeMutablePointer<NBDPipelineTally>? = nil
}

/// What the completion callbacks of one pipelined write have reported so far.
///
/// Written by the callbacks, which libnbd runs inside the calls the writing thread makes on the
/// handle (`nbd_aio_pwrite`, `nbd_poll`) while it holds the export's lock, so plain memory suffices.
struct NBDPipelineTally {
    /// Requests submitted and not yet completed.
    var inFlight = 0
    /// The most requests that were in flight at once: the pipelining actually achieved.
    var peakInFlight = 0
    /// The head of the free-slot list, -1 when every slot is in flight.
    var freeHead: Int32 = -1
    /// Requests that completed with an error.
    var failures = 0
    /// The first failed request's errno (in completion order), 0 while none failed.
    var firstErrno: Int32 = 0
    /// The first failed request's offset in the export.
    var firstOffset: UInt64 = 0
    /// The first failed request's length.
    var firstLength = 0
}

/// The completion slots of the export's pipelined writes, allocated once and reused, so a write
/// costs no allocation per request; grown when a writer wants more requests in flight.
///
/// Owned by the export's lock and freed only after the handle is closed (the export's `deinit`
/// runs before its stored properties are destroyed), so a callback libnbd runs late, even from
/// `nbd_close`, never touches freed memory.
struct NBDCompletionSlots: ~Copyable {
    /// The tally the callbacks report to.
    let tally: UnsafeMutablePointer<NBDPipelineTally>
    /// The slots, `capacity` of them.
    private(set) var slots: UnsafeMutablePointer<NBDCompletionSlot>
    /// How many slots are allocated.
    private(set) var capacity: Int
    /// Set when a pipelined write ended with requests libnbd may still complete (the connection
    /// failed under them): the slots may not be reused, and the export takes no more operations.
    var broken: NBDError?

    /// An empty set; the first pipelined write allocates its slots.
    init() {
        tally = .allocate(capacity: 1)
        tally.initialize(to: NBDPipelineTally())
        slots = .allocate(capacity: 0)
        capacity = 0
    }

    /// Frees the slots and the tally; runs after the export's `deinit` closed the handle.
    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        tally.deinitialize(count: 1)
        tally.deallocate()
    }

    /// Throws the error that broke the connection, if one did.
    func checkUsable() throws(NBDError) {
        if let broken { throw broken }
    }

    /// Resets the tally and threads `count` slots onto the free list, growing the allocation if
    /// needed. Only valid with nothing in flight.
    mutating func prepare(count: Int) {
        precondition(tally.pointee.inFlight == 0, "completion slots reused with requests in flight")
        if count > capacity {
            slots.deinitialize(count: capacity)
            slots.deallocate()
            slots = .allocate(capacity: count)
            slots.initialize(repeating: NBDCompletionSlot(), count: count)
            capacity = count
        }
        for i in 0..<count {
            slots[i] = NBDCompletionSlot(
                nextFree: i + 1 < count ? Int32(i + 1) : -1, index: Int32(i), tally: tally)
        }
        tally.pointee = NBDPipelineTally(freeHead: count > 0 ? 0 : -1)
    }

    /// Takes a free slot for a request of `length` bytes at `offset`, or nil when all are in flight.
    func take(offset: UInt64, length: Int) -> UnsafeMutablePointer<NBDCompletionSlot>? {
        let head = tally.pointee.freeHead
        guard head >= 0 else { return nil }
        let slot = slots + Int(head)
        tally.pointee.freeHead = slot.pointee.nextFree
        slot.pointee.offset = offset
        slot.pointee.length = length
        tally.pointee.inFlight += 1
        tally.pointee.peakInFlight = max(tally.pointee.peakInFlight, tally.pointee.inFlight)
        return slot
    }

    /// Gives back a slot whose request libnbd refused to queue (its callback will never run).
    func giveBack(_ slot: UnsafeMutablePointer<NBDCompletionSlot>) {
        slot.pointee.nextFree = tally.pointee.freeHead
        tally.pointee.freeHead = slot.pointee.index
        tally.pointee.inFlight -= 1
    }

    /// The completion callback for `nbd_aio_pwrite`: records the request's outcome, frees its slot,
    /// and returns 1 so libnbd retires the command itself (no `nbd_aio_command_completed`). libnbd
    /// runs it exactly once per queued command, with the server's errno or its own (ENOTCONN for a
    /// command abandoned on a dead connection) in `*error`. It must not call libnbd: the handle's
    /// lock is held.
    static func completed(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
        guard let slot = userData?.assumingMemoryBound(to: NBDCompletionSlot.self),
            let tally = slot.pointee.tally
        else { return 1 }
        let code = error?.pointee ?? 0
        if code != 0 {
            if tally.pointee.failures == 0 {
                tally.pointee.firstErrno = code
                tally.pointee.firstOffset = slot.pointee.offset
                tally.pointee.firstLength = slot.pointee.length
            }
            tally.pointee.failures += 1
        }
        slot.pointee.nextFree = tally.pointee.freeHead
        tally.pointee.freeHead = slot.pointee.index
        tally.pointee.inFlight -= 1
        return 1
    }
}
