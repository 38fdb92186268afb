import MirrorCore
import Synchronization

/// The per-frame tracking bitvector of the Stratus page-tracking module, with its running count:
/// one bit a frame, set by the store path, harvested (reported and cleared) by the engine.
///
/// The store path checks before it sets: a relaxed load per store (`isMarked(_:)`, about 1 ns
/// when the frame is already dirty), and the frames it found clean are set together after the
/// batch of stores (`markDirty(_:count:writer:)`). An atomic OR inside the store loop would
/// wait for every store still in flight (a locked instruction drains the store buffer) and cost
/// the store path the overlap of its cache misses: after each harvest, when the cold frames are
/// clean again, that doubled the cost of a store on the fast hosts. Setting the bit after the
/// store is safe: a harvest that clears anything is followed by a shootdown that every CPU
/// acknowledges between batches, so the copy after it sees every store made before the clear,
/// and a frame whose bit is set later is harvested by the next pass.
/// The running count is kept in per-writer counters, each on its own cache line, so that counting
/// costs a store path no shared atomic.
///
/// `@unchecked Sendable`: every word is accessed through `Atomic`; the raw storage is owned here.
public final class TrackingBitmap: @unchecked Sendable {
    /// The number of frames tracked.
    public let frameCount: Int
    /// The bit words, `frameCount / 64` rounded up.
    package let words: UnsafeMutablePointer<Atomic<UInt64>>
    package let wordCount: Int
    /// One counter a writer plus one for the harvester, 64 bytes apart.
    let counters: UnsafeMutableRawPointer
    let counterSlots: Int
    static let counterStride = 64

    /// Creates a bitvector for `frameCount` frames, with running-count slots for `writers` writers.
    public init(frameCount: Int, writers: Int) {
        self.frameCount = frameCount
        wordCount = (frameCount + 63) / 64
        words = .allocate(capacity: wordCount)
        for i in 0..<wordCount { (words + i).initialize(to: Atomic(0)) }
        counterSlots = writers + 2
        counters = .allocate(byteCount: counterSlots * Self.counterStride, alignment: 64)
        for i in 0..<counterSlots { counter(i).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: wordCount)
        words.deallocate()
        for i in 0..<counterSlots { counter(i).deinitialize(count: 1) }
        counters.deallocate()
    }

    @inline(__always)
    func counter(_ slot: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (counters + slot * Self.counterStride).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// The harvester's counter slot (one thread).
    var harvesterSlot: Int { counterSlots - 2 }
    /// A slot any thread may update (atomically): departing entries, kernel writes.
    var sharedSlot: Int { counterSlots - 1 }

    /// Adds `delta` to the running count on behalf of any thread.
    func adjustShared(_ delta: Int) {
        counter(sharedSlot).pointee.add(delta, ordering: .relaxed)
    }

    /// Adds `delta` to the running count on behalf of `writer`'s single thread (no lock prefix).
    @inline(__always)
    func adjust(_ delta: Int, writer: Int) {
        let c = counter(writer)
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }

    /// Marks `frame` dirty from any thread; returns whether it was clean.
    @discardableResult
    package func markDirtyShared(_ frame: Int) -> Bool {
        let bit: UInt64 = 1 &<< UInt64(frame & 63)
        let word = words + (frame &>> 6)
        guard word.pointee.load(ordering: .relaxed) & bit == 0,
            word.pointee.bitwiseOr(bit, ordering: .relaxed).oldValue & bit == 0
        else { return false }
        adjustShared(1)
        return true
    }

    /// The frames `writer` has marked since tracking started (its own counter).
    func writerCount(_ writer: Int) -> Int {
        counter(writer).pointee.load(ordering: .relaxed)
    }

    /// Marks `frame` dirty on behalf of `writer` (the store path).
    @inline(__always)
    package func markDirty(_ frame: Int, writer: Int) {
        let bit: UInt64 = 1 &<< UInt64(frame & 63)
        let word = words + (frame &>> 6)
        if word.pointee.load(ordering: .relaxed) & bit == 0 {
            if word.pointee.bitwiseOr(bit, ordering: .relaxed).oldValue & bit == 0 {
                adjust(1, writer: writer)
            }
        }
    }

    /// Marks the `count` frames at `frames` dirty on behalf of `writer`, after its batch of stores
    /// to them; each is checked before it is set (a frame may be listed more than once).
    @inline(__always)
    package func markDirty(_ frames: UnsafePointer<UInt32>, count: Int, writer: Int) {
        for i in 0..<count { markDirty(Int(frames[i]), writer: writer) }
    }

    /// Whether `frame` is marked dirty: the store path's check (one load, no write).
    @inline(__always)
    package func isMarked(_ frame: Int) -> Bool {
        (words + (frame &>> 6)).pointee.load(ordering: .relaxed) & (1 &<< UInt64(frame & 63)) != 0
    }

    /// Whether `frame` is marked dirty.
    public func isDirty(_ frame: Int) -> Bool {
        words[frame >> 6].load(ordering: .relaxed) & (1 << UInt64(frame & 63)) != 0
    }

    /// The running count of dirty frames.
    public var dirtyCount: Int {
        var sum = 0
        for i in 0..<counterSlots { sum &+= counter(i).pointee.load(ordering: .relaxed) }
        return max(0, sum)
    }

    /// Clears every bit and the running count. Only while no writer marks frames.
    func reset() {
        for i in 0..<wordCount { words[i].store(0, ordering: .relaxed) }
        for i in 0..<counterSlots { counter(i).pointee.store(0, ordering: .relaxed) }
    }

    /// The `count` lowest set bits of `bits`.
    @inline(__always)
    static func lowestBits(of bits: UInt64, count: Int) -> UInt64 {
        var keep: UInt64 = 0
        var rest = bits
        for _ in 0..<count {
            keep |= rest & (~rest &+ 1)
            rest &= rest &- 1
        }
        return keep
    }

    /// Reports and/or clears the dirty frames of `range` into `output` with the semantics of
    /// ``DuplexHardware/harvest(frames:flags:into:)``. Arguments are already checked.
    func harvest(_ range: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        -> HarvestResult
    {
        guard !range.isEmpty else { return HarvestResult(reported: 0, cleared: 0, scanEnd: range.upperBound) }
        var reported = 0
        var cleared = 0
        let firstWord = range.lowerBound >> 6
        let lastWord = (range.upperBound - 1) >> 6
        let firstMask = UInt64.max << UInt64(range.lowerBound & 63)
        let lastMask = UInt64.max >> UInt64(63 - ((range.upperBound - 1) & 63))
        let capacity = output.count
        defer {
            if cleared > 0 { counter(harvesterSlot).pointee.subtract(cleared, ordering: .relaxed) }
        }
        var w = firstWord
        while w <= lastWord {
            // The common case first, the plain C get-and-clear's loop: an interior word (no range
            // mask) with room for all of it in the output, taken whole by one exchange.
            if get && clear && w != firstWord && w != lastWord {
                let out = output.baseAddress!
                let before = reported
                while w < lastWord && capacity &- reported >= 64 {
                    // Most words are zero and cost one load.
                    if words[w].load(ordering: .relaxed) == 0 {
                        w &+= 1
                        continue
                    }
                    var take = words[w].exchange(0, ordering: .acquiringAndReleasing)
                    let base = w &<< 6
                    while take != 0 {
                        out[reported] = UInt32(truncatingIfNeeded: base &+ take.trailingZeroBitCount)
                        reported &+= 1
                        take &= take &- 1
                    }
                    w &+= 1
                }
                cleared &+= reported &- before
                // The output may have filled exactly at the end of a word: stop after its last frame.
                if reported == capacity {
                    return HarvestResult(
                        reported: reported, cleared: cleared,
                        scanEnd: min(Int(out[reported &- 1]) &+ 1, range.upperBound))
                }
            }
            // Every other word: a range's first or last, an output nearly full, a report or a
            // clear alone.
            var seen = words[w].load(ordering: .relaxed)
            if seen == 0 {
                w &+= 1
                continue
            }
            var whole = true
            if w == firstWord {
                seen &= firstMask
                whole = firstMask == .max
            }
            if w == lastWord {
                seen &= lastMask
                whole = whole && lastMask == .max
            }
            if seen == 0 {
                w &+= 1
                continue
            }
            guard get else {
                // x86 has no fetch-and that returns the old value; an exchange is one instruction.
                let old =
                    whole
                    ? words[w].exchange(0, ordering: .acquiringAndReleasing)
                    : words[w].bitwiseAnd(~seen, ordering: .acquiringAndReleasing).oldValue & seen
                cleared &+= old.nonzeroBitCount
                w &+= 1
                continue
            }
            // Take at most as many bits as the output vector has room for, lowest first. (With
            // room for a whole word, skip the count: popcount is a dozen instructions on
            // baseline x86-64.)
            var take = seen
            let room = capacity &- reported
            if room < 64 && take.nonzeroBitCount > room { take = Self.lowestBits(of: take, count: room) }
            if clear {
                if whole && room >= 64 && take == seen {
                    // The whole word fits: take it, with any bit set since the load.
                    take = words[w].exchange(0, ordering: .acquiringAndReleasing)
                } else {
                    take = words[w].bitwiseAnd(~take, ordering: .acquiringAndReleasing).oldValue & take
                }
            }
            let before = reported
            let out = output.baseAddress!
            let base = w &<< 6
            var last = base
            while take != 0 {
                last = base &+ take.trailingZeroBitCount
                out[reported] = UInt32(truncatingIfNeeded: last)
                reported &+= 1
                take &= take &- 1
            }
            if clear { cleared &+= reported &- before }
            if reported == capacity {
                return HarvestResult(reported: reported, cleared: cleared, scanEnd: min(last + 1, range.upperBound))
            }
            w &+= 1
        }
        return HarvestResult(reported: reported, cleared: cleared, scanEnd: range.upperBound)
    }
}
