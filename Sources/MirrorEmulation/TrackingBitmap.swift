import MirrorCore
import Synchronization

/// The per-frame tracking bitvector of the Stratus page-tracking module, with its running count:
/// one bit a frame, set by the store path, harvested (reported and cleared) by the engine.
///
/// The store path checks before it sets: a relaxed load, and an atomic OR only when the bit is
/// clear (about 1 ns when the frame is already dirty, against 6–14 ns for an OR every time).
/// The running count is kept in per-writer counters, each on its own cache line, so that counting
/// costs a store path no shared atomic.
///
/// `@unchecked Sendable`: every word is accessed through `Atomic`; the raw storage is owned here.
public final class TrackingBitmap: @unchecked Sendable {
    /// The number of frames tracked.
    public let frameCount: Int
    /// The bit words, `frameCount / 64` rounded up.
    let words: UnsafeMutablePointer<Atomic<UInt64>>
    let wordCount: Int
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
    func markDirtyShared(_ frame: Int) -> Bool {
        let bit: UInt64 = 1 &<< UInt64(frame & 63)
        let word = words + (frame &>> 6)
        guard word.pointee.load(ordering: .relaxed) & bit == 0,
              word.pointee.bitwiseOr(bit, ordering: .relaxed).oldValue & bit == 0 else { return false }
        adjustShared(1)
        return true
    }

    /// Marks `frame` dirty on behalf of `writer` (the store path).
    @inline(__always)
    func markDirty(_ frame: Int, writer: Int) {
        let bit: UInt64 = 1 &<< UInt64(frame & 63)
        let word = words + (frame &>> 6)
        if word.pointee.load(ordering: .relaxed) & bit == 0 {
            if word.pointee.bitwiseOr(bit, ordering: .relaxed).oldValue & bit == 0 {
                adjust(1, writer: writer)
            }
        }
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

    /// Reports and/or clears the dirty frames of `range` into `output` with the semantics of
    /// ``DuplexHardware/harvest(frames:flags:into:)``. Arguments are already checked.
    func harvest(_ range: Range<Int>, get: Bool, clear: Bool, into output: UnsafeMutableBufferPointer<UInt32>)
        -> HarvestResult
    {
        var reported = 0
        var cleared = 0
        var wordIndex = range.lowerBound >> 6
        let endWord = (range.upperBound + 63) >> 6
        let out = output.baseAddress
        let capacity = output.count
        defer {
            if cleared > 0 { counter(harvesterSlot).pointee.subtract(cleared, ordering: .relaxed) }
        }
        while wordIndex < endWord {
            let base = wordIndex << 6
            var mask = UInt64.max
            if base < range.lowerBound { mask &= UInt64.max << UInt64(range.lowerBound - base) }
            if range.upperBound - base < 64 { mask &= (1 << UInt64(range.upperBound - base)) - 1 }
            let seen = words[wordIndex].load(ordering: .relaxed) & mask
            if seen == 0 {
                wordIndex += 1
                continue
            }
            guard get else {
                let old = words[wordIndex].bitwiseAnd(~mask, ordering: .acquiringAndReleasing).oldValue & mask
                cleared += old.nonzeroBitCount
                wordIndex += 1
                continue
            }
            // Take at most as many bits as the output vector has room for, lowest first.
            var take = seen
            let room = capacity - reported
            if take.nonzeroBitCount > room {
                var keep: UInt64 = 0
                var rest = take
                for _ in 0..<room {
                    let low = rest & (~rest &+ 1)
                    keep |= low
                    rest &= rest &- 1
                }
                take = keep
            }
            if clear {
                take = words[wordIndex].bitwiseAnd(~take, ordering: .acquiringAndReleasing).oldValue & take
                cleared += take.nonzeroBitCount
            }
            var bits = take
            var last = base
            while bits != 0 {
                last = base + bits.trailingZeroBitCount
                out![reported] = UInt32(truncatingIfNeeded: last)
                reported += 1
                bits &= bits &- 1
            }
            if reported == capacity {
                return HarvestResult(reported: reported, cleared: cleared, scanEnd: min(last + 1, range.upperBound))
            }
            wordIndex += 1
        }
        return HarvestResult(reported: reported, cleared: cleared, scanEnd: range.upperBound)
    }
}
