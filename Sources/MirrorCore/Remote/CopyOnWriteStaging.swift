import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Copy-on-write staging of an epoch: its pause only lists the frames to stage (pending), and
/// they are copied into the staging slot after the resume, by the replicator's thread, or by a
/// writer about to store into one still pending, which copies it first, so that the slot holds
/// memory exactly as the pause found it.
///
/// Each frame has a pending bit (a bitvector of one bit a frame, as dense as the tracking one, so
/// that the store path's check stays in cache) and a state word: 0, nothing pending; pending, the
/// frame's place in the slot's list (`(position + 1) << 1`); claimed, the same with bit 0 set
/// while one thread copies it. A thread claims a pending frame with a compare-and-exchange,
/// copies it, stores 0 (releasing), then clears its pending bit; a writer that finds it claimed
/// by another waits until it is 0. No lock on the store path: a writer looks at ``isArmed`` once
/// a batch of stores, and only while it is true at each frame's pending bit before its store
/// (``beforeWrite(_:)``, one load and a branch when the frame is not pending).
///
/// Armed only inside a pause (every writer stopped at a checkpoint), so a writer's batch either
/// began before the pause (and ended at its checkpoint) or begins after the arming and sees it.
/// The replicator's thread alone arms, stages and disarms; one epoch is pending at a time.
///
/// `@unchecked Sendable`: the states and the armed word are atomics in storage owned here; the
/// source and destination are written only inside a pause, before the writers resume (the
/// blackout's resume publishes them), and read by the writers only while armed.
public final class CopyOnWriteStaging: @unchecked Sendable {
    /// The frames tracked and their size.
    public let frameCount: Int
    public let frameSize: Int
    private let states: UnsafeMutablePointer<Atomic<UInt32>>
    /// One bit a frame: set while its state is not 0 (set in the pause, cleared after its copy).
    private let pending: UnsafeMutablePointer<Atomic<UInt64>>
    private let pendingWords: Int
    /// Non-zero while frames may be pending; alone on its cache line (read once a batch by every
    /// writer, written twice an epoch).
    private let armedWord: UnsafeMutableRawPointer
    private var source: UnsafeRawPointer?
    private var destination: UnsafeMutableRawPointer?
    private var list = UnsafeBufferPointer<UInt32>(start: nil, count: 0)
    /// Frames the writers copied themselves, since the machine started.
    private let writerCopies = Atomic<Int>(0)
    /// Test-only: arming leaves the writers unaware (they skip the check), so that a negative
    /// control can show that the stager alone stages frames with contents written after the pause.
    package let writersIgnore = Atomic<Bool>(false)

    /// A state table for `frameCount` frames of `frameSize` bytes, nothing pending.
    public init(frameCount: Int, frameSize: Int) {
        self.frameCount = frameCount
        self.frameSize = frameSize
        states = .allocate(capacity: max(1, frameCount))
        for i in 0..<max(1, frameCount) { (states + i).initialize(to: Atomic(0)) }
        pendingWords = max(1, (frameCount + 63) / 64)
        pending = .allocate(capacity: pendingWords)
        for i in 0..<pendingWords { (pending + i).initialize(to: Atomic(0)) }
        armedWord = .allocate(byteCount: 128, alignment: 64)
        armedWord.assumingMemoryBound(to: Atomic<Int>.self).initialize(to: Atomic(0))
    }

    deinit {
        states.deinitialize(count: max(1, frameCount))
        states.deallocate()
        pending.deinitialize(count: pendingWords)
        pending.deallocate()
        armedWord.assumingMemoryBound(to: Atomic<Int>.self).deinitialize(count: 1)
        armedWord.deallocate()
    }

    @inline(__always)
    private var armed: UnsafeMutablePointer<Atomic<Int>> { armedWord.assumingMemoryBound(to: Atomic<Int>.self) }

    /// Whether frames may be pending: a writer reads it once a batch of stores, after its
    /// checkpoint, and checks each store's frame (``beforeWrite(_:)``) only while it is true.
    @inline(__always)
    public var isArmed: Bool { armed.pointee.load(ordering: .acquiring) != 0 }

    /// Frames the writers copied into a slot themselves (a store to a frame still pending), since
    /// the machine started.
    public var framesCopiedByWriters: Int { writerCopies.load(ordering: .relaxed) }

    /// The writer's check before a store into `frame`: returns once the frame's contents as the
    /// pause found them are in the slot (at once when it is not pending).
    @inline(__always)
    public func beforeWrite(_ frame: Int) {
        if pending[frame &>> 6].load(ordering: .acquiring) & (1 &<< UInt64(frame & 63)) != 0 { settle(frame) }
    }

    /// The store path's view: the pending bits' address, taken once a batch into a local, so that
    /// the check is one load and a branch (a stored pointer would be loaded again after each
    /// store, which the compiler cannot tell from a write to it).
    /// Inlinable: the writers are in another module, and a call a store would cost more than the
    /// check.
    public struct Check {
        @usableFromInline let bits: UnsafeMutablePointer<Atomic<UInt64>>
        @usableFromInline unowned(unsafe) let owner: CopyOnWriteStaging

        /// ``CopyOnWriteStaging/beforeWrite(_:)``.
        @inlinable @inline(__always)
        public func beforeWrite(_ frame: Int) {
            if bits[frame &>> 6].load(ordering: .acquiring) & (1 &<< UInt64(frame & 63)) != 0 { owner.settle(frame) }
        }
    }

    /// The check for a batch of stores.
    @inline(__always)
    public var check: Check { Check(bits: pending, owner: self) }

    /// Frame `frame`'s copy is in the slot: its state back to 0, then its pending bit cleared.
    @inline(__always)
    private func finish(_ frame: Int) {
        states[frame].store(0, ordering: .releasing)
        pending[frame &>> 6].bitwiseAnd(~(1 &<< UInt64(frame & 63)), ordering: .releasing)
    }

    /// A pending frame: claim and copy it, or wait for the thread that claimed it.
    @usableFromInline @inline(never)
    func settle(_ frame: Int) {
        var spins = 0
        while true {
            let state = states[frame].load(ordering: .acquiring)
            if state == 0 { return }
            if state & 1 == 0 {
                if states[frame].compareExchange(
                    expected: state, desired: state | 1, ordering: .acquiringAndReleasing
                ).exchanged {
                    copy(frame, position: Int(state >> 1) - 1)
                    finish(frame)
                    writerCopies.add(1, ordering: .relaxed)
                    return
                }
                continue
            }
            // Another thread copies it: a frame's copy is a microsecond, unless the host took
            // that thread's CPU.
            spins += 1
            if spins & 1023 == 0 { sched_yield() }
        }
    }

    @inline(__always)
    private func copy(_ frame: Int, position: Int) {
        memcpy(destination! + position * frameSize, source! + frame * frameSize, frameSize)
    }

    /// Inside a pause (every writer stopped): marks the `frames` (distinct, at most 2³¹ - 2) to
    /// be copied from `memory` into `slot` (frame `frames[i]` at `i × frameSize`), and arms the
    /// writers' check. The frames stay listed until ``stagePending()`` returns.
    public func arm(
        frames: UnsafeBufferPointer<UInt32>, from memory: UnsafeRawPointer, into slot: UnsafeMutableRawPointer
    ) {
        guard !frames.isEmpty else { return }
        source = memory
        destination = slot
        list = frames
        for (i, frame) in frames.enumerated() {
            let f = Int(frame)
            states[f].store(UInt32(truncatingIfNeeded: (i + 1) << 1), ordering: .relaxed)
            pending[f &>> 6].bitwiseOr(1 &<< UInt64(f & 63), ordering: .relaxed)
        }
        armed.pointee.store(writersIgnore.load(ordering: .relaxed) ? 0 : 1, ordering: .releasing)
    }

    /// Arms the writers' check with nothing pending, until ``disarm()``: each store then pays
    /// the check (one load and a branch) and nothing else. Measurements only.
    package func armIdle() { armed.pointee.store(1, ordering: .releasing) }

    /// Ends ``armIdle()``.
    package func disarm() { armed.pointee.store(0, ordering: .releasing) }

    /// After the resume: copies every listed frame no writer has claimed, waits for those a writer
    /// is copying, and disarms; from the return on, the slot holds each frame as the pause found
    /// it (when the writers check). Returns the frames this thread copied.
    @discardableResult
    public func stagePending() -> Int {
        var copied = 0
        for (i, frame) in list.enumerated() {
            let f = Int(frame)
            let state = states[f].load(ordering: .relaxed)
            guard state & 1 == 0, state != 0,
                states[f].compareExchange(expected: state, desired: state | 1, ordering: .acquiringAndReleasing)
                    .exchanged
            else { continue }
            copy(f, position: i)
            finish(f)
            copied += 1
        }
        // Those a writer claimed: its copy must be in the slot before the slot ships.
        for frame in list {
            var spins = 0
            while states[Int(frame)].load(ordering: .acquiring) != 0 {
                spins += 1
                if spins & 1023 == 0 { sched_yield() }
            }
        }
        armed.pointee.store(0, ordering: .releasing)
        list = UnsafeBufferPointer(start: nil, count: 0)
        source = nil
        destination = nil
        return copied
    }
}
