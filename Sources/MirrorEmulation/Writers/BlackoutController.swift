import CMirrorShims
import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Stops and resumes the emulated CPUs and the DMA engine (the SMI *blackout*), and performs the
/// emulation's TLB shootdown: after the harvester clears dirty bits, every CPU acknowledges
/// before the harvester copies, so no store slips between a clear and a copy unseen.
///
/// Each writer (CPU or DMA engine) owns a slot on its own cache line and calls
/// ``checkpoint(_:seen:)`` between batches of stores, where it costs one load of the shared epoch.
/// A writer that sleeps to keep its rate *parks* first; a parked writer counts as stopped and as
/// having acknowledged, and looks at the epoch again before its next store. Every writer starts
/// parked and unparks as its thread begins. The parked flag and
/// the epoch are written and read sequentially consistent, so that either the controller sees the
/// writer awake and waits for it, or the writer sees the controller's request.
///
/// `@unchecked Sendable`: all shared state is `Atomic` in storage owned here.
final class BlackoutController: @unchecked Sendable {
    private struct Slot: ~Copyable {
        /// The last epoch the writer acknowledged.
        let ack = Atomic<UInt64>(0)
        /// 1 while the writer sleeps outside its store loop, has not started yet, or has exited:
        /// a machine whose threads were never started (or could not be) is still stopped and
        /// shot down at once.
        let parked = Atomic<UInt32>(1)
        /// 1 while the writer waits in a blackout.
        let stopped = Atomic<UInt32>(0)
        /// 1 while a writer that sets no dirty bits of its own (DMA) marks its frames dirty, and
        /// so must acknowledge a shootdown too.
        let marksDirty = Atomic<UInt32>(0)
    }

    private struct Shared: ~Copyable {
        let epoch = Atomic<UInt64>(1)
        let blackoutRequested = Atomic<UInt32>(0)
        /// 1 while the controller sleeps waiting for writers to arrive (stop, acknowledge, park).
        let controllerWaiting = Atomic<UInt32>(0)
    }

    private static let stride = 64
    /// Spins (a `pause` each) a stopped writer makes before it sleeps on the futex.
    private static let resumeSpins = 100
    /// The longest futex sleep of a stopped writer before it looks again (10 ms).
    private static let resumeSleep: UInt64 = 10_000_000
    /// Spins the controller makes waiting for a writer before it sleeps, giving its core away.
    private static let waitSpins = 256
    /// The longest sleep of the controller before it looks again, should a wake-up be missed.
    private static let arrivalSleep: UInt64 = 200_000
    private let storage: UnsafeMutableRawPointer
    /// Bumped on every resume; the futex word stopped writers sleep on.
    private let resumeGeneration: UnsafeMutablePointer<Atomic<UInt32>>
    /// Bumped by a writer arriving (stopped, acknowledged, parked) while the controller waits;
    /// the futex word the controller sleeps on. Sleeping instead of spinning gives the core to a
    /// writer that is waiting for one: on a machine with more threads than cores, a writer the
    /// scheduler has set aside reaches its checkpoint only once it runs again.
    private let arrivals: UnsafeMutablePointer<Atomic<UInt32>>
    /// How many writers take part.
    let writerCount: Int
    /// Which writers set dirty bits and so must acknowledge a shootdown (CPUs: yes; DMA: only
    /// while it marks its frames, see ``setMarksDirty(_:_:)``).
    private let tracksDirty: [Bool]

    /// Creates a controller for writers whose dirty-tracking role is given by `tracksDirty`.
    init(tracksDirty: [Bool]) {
        self.tracksDirty = tracksDirty
        writerCount = tracksDirty.count
        storage = .allocate(byteCount: (writerCount + 1) * Self.stride, alignment: 64)
        resumeGeneration = .allocate(capacity: 1)
        resumeGeneration.initialize(to: Atomic(0))
        arrivals = .allocate(capacity: 1)
        arrivals.initialize(to: Atomic(0))
        shared.initialize(to: Shared())
        for i in 0..<writerCount { slot(i).initialize(to: Slot()) }
    }

    deinit {
        shared.deinitialize(count: 1)
        for i in 0..<writerCount { slot(i).deinitialize(count: 1) }
        storage.deallocate()
        resumeGeneration.deinitialize(count: 1)
        resumeGeneration.deallocate()
        arrivals.deinitialize(count: 1)
        arrivals.deallocate()
    }

    private var shared: UnsafeMutablePointer<Shared> { storage.assumingMemoryBound(to: Shared.self) }

    private func slot(_ i: Int) -> UnsafeMutablePointer<Slot> {
        (storage + (i + 1) * Self.stride).assumingMemoryBound(to: Slot.self)
    }

    // MARK: - Writer side

    /// The epoch, read on every batch: when it differs from the writer's last one, the writer
    /// calls ``checkpoint(_:seen:)``.
    @inline(__always)
    var epoch: UInt64 { shared.pointee.epoch.load(ordering: .sequentiallyConsistent) }

    /// Acknowledges the current epoch and, in a blackout, stops here until it ends. Called by
    /// writer `writer` between stores; updates `seen` to the epoch acknowledged. Returns whether
    /// the writer stopped (so it must reload any flags changed in the blackout).
    @discardableResult
    func checkpoint(_ writer: Int, seen: inout UInt64) -> Bool {
        let s = slot(writer)
        var stoppedHere = false
        while true {
            let e = shared.pointee.epoch.load(ordering: .sequentiallyConsistent)
            s.pointee.ack.store(e, ordering: .sequentiallyConsistent)
            seen = e
            if shared.pointee.blackoutRequested.load(ordering: .sequentiallyConsistent) == 0 {
                arrive()
                return stoppedHere
            }
            stoppedHere = true
            s.pointee.stopped.store(1, ordering: .sequentiallyConsistent)
            arrive()
            waitForResume()
            s.pointee.stopped.store(0, ordering: .releasing)
        }
    }

    private func waitForResume() {
        var spins = 0
        while true {
            let generation = resumeGeneration.pointee.load(ordering: .acquiring)
            if shared.pointee.blackoutRequested.load(ordering: .acquiring) == 0 { return }
            if spins < Self.resumeSpins {
                spins += 1
                mirrord_cpu_relax()
                continue
            }
            _ = mirrord_futex_wait(resumeWordAddress, generation, Self.resumeSleep)
        }
    }

    /// The resume generation as the plain 32-bit word the futex calls take.
    private var resumeWordAddress: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(resumeGeneration).assumingMemoryBound(to: UInt32.self)
    }

    /// Wakes the controller if it sleeps waiting for writers (after this writer's state changed).
    @inline(__always)
    private func arrive() {
        guard shared.pointee.controllerWaiting.load(ordering: .sequentiallyConsistent) != 0 else { return }
        arrivals.pointee.add(1, ordering: .releasing)
        mirrord_futex_wake_all(arrivalsWordAddress)
    }

    private var arrivalsWordAddress: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(arrivals).assumingMemoryBound(to: UInt32.self)
    }

    /// Marks writer `writer` as parked (about to sleep, or gone). Its stores so far are visible to
    /// whoever sees it parked.
    func park(_ writer: Int) {
        slot(writer).pointee.parked.store(1, ordering: .sequentiallyConsistent)
        arrive()
    }

    /// Marks writer `writer` awake again and passes the checkpoint before it may store.
    func unpark(_ writer: Int, seen: inout UInt64) {
        slot(writer).pointee.parked.store(0, ordering: .sequentiallyConsistent)
        checkpoint(writer, seen: &seen)
    }

    // MARK: - Controller side

    /// Whether a blackout is in force.
    var inBlackout: Bool { shared.pointee.blackoutRequested.load(ordering: .acquiring) != 0 }

    /// Whether every writer is stopped at its checkpoint or parked (true inside a blackout).
    var everyWriterStopped: Bool {
        (0..<writerCount).allSatisfy {
            slot($0).pointee.stopped.load(ordering: .acquiring) != 0
                || slot($0).pointee.parked.load(ordering: .sequentiallyConsistent) != 0
        }
    }

    /// Bumps the epoch so that every writer passes a checkpoint and reloads its flags, without
    /// waiting for them.
    func announce() {
        shared.pointee.epoch.add(1, ordering: .sequentiallyConsistent)
    }

    /// Makes `writer` (one that sets no dirty bits of its own) take part in shootdowns while it
    /// marks the frames it writes (`on`), or leaves it out again.
    func setMarksDirty(_ writer: Int, _ on: Bool) {
        slot(writer).pointee.marksDirty.store(on ? 1 : 0, ordering: .sequentiallyConsistent)
    }

    /// The TLB shootdown: returns once every dirty-tracking writer has acknowledged an epoch at
    /// least as new as this call's, or is parked or stopped.
    func synchronizeWriters() {
        let target = shared.pointee.epoch.add(1, ordering: .sequentiallyConsistent).newValue
        waitFor { i, s in
            !(tracksDirty[i] || s.pointee.marksDirty.load(ordering: .sequentiallyConsistent) != 0)
                || s.pointee.ack.load(ordering: .sequentiallyConsistent) >= target
                || s.pointee.parked.load(ordering: .sequentiallyConsistent) != 0
                || s.pointee.stopped.load(ordering: .sequentiallyConsistent) != 0
        }
    }

    /// Stops every writer at its next checkpoint and returns how long that took, in nanoseconds.
    func stopAll() -> UInt64 {
        let start = MonotonicClock.nanoseconds()
        shared.pointee.blackoutRequested.store(1, ordering: .sequentiallyConsistent)
        shared.pointee.epoch.add(1, ordering: .sequentiallyConsistent)
        waitFor { _, s in
            s.pointee.stopped.load(ordering: .sequentiallyConsistent) != 0
                || s.pointee.parked.load(ordering: .sequentiallyConsistent) != 0
        }
        return MonotonicClock.nanoseconds() &- start
    }

    /// Waits until `arrived` holds for every writer: a short spin, then sleeps on the arrivals
    /// futex, so that a writer waiting for a core gets this one.
    private func waitFor(_ arrived: (Int, UnsafeMutablePointer<Slot>) -> Bool) {
        func everyone() -> Bool { (0..<writerCount).allSatisfy { arrived($0, slot($0)) } }
        for _ in 0..<Self.waitSpins {
            if everyone() { return }
            mirrord_cpu_relax()
        }
        shared.pointee.controllerWaiting.store(1, ordering: .sequentiallyConsistent)
        while true {
            let generation = arrivals.pointee.load(ordering: .acquiring)
            if everyone() { break }
            _ = mirrord_futex_wait(arrivalsWordAddress, generation, Self.arrivalSleep)
        }
        shared.pointee.controllerWaiting.store(0, ordering: .sequentiallyConsistent)
    }

    /// Resumes every writer.
    func resumeAll() {
        shared.pointee.epoch.add(1, ordering: .sequentiallyConsistent)
        shared.pointee.blackoutRequested.store(0, ordering: .sequentiallyConsistent)
        resumeGeneration.pointee.add(1, ordering: .releasing)
        mirrord_futex_wake_all(resumeWordAddress)
    }
}
