import CMirrorShims
import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A second copying thread that lives as long as the machine and sleeps on a futex between jobs,
/// so that a long copy (the full copy, a blackout's final frames) is split between two cores
/// without creating a thread each time, and never inside a blackout.
///
/// One job at a time: ``run(_:alongside:)`` hands the helper its half, does the caller's half, and
/// waits for the helper. A caller that finds the helper busy (another thread copying) is told so
/// and does the whole job itself. The helper's thread holds neither the helper nor its owner
/// (give `work` a weak reference), so dropping the helper stops its thread.
final class CopyHelper: Sendable {
    /// Work for the helper: what to copy, handed over as addresses (buffer pointers are not
    /// `Sendable`); the caller keeps the memory alive until the job is done.
    enum Job: Sendable {
        /// Nothing (the initial state).
        case idle
        /// Frames `range` of the modules.
        case range(Range<Int>)
        /// The `count` frame numbers at `address`.
        case list(address: UInt, count: Int)
        /// Exit the thread.
        case quit
    }

    /// What caller and helper share.
    ///
    /// `@unchecked Sendable`: `job` is written by the one caller that owns the helper (won
    /// through `busy`) before it publishes the job with a release add to `posted`, and read by
    /// the helper after its acquire load of the same word.
    private final class Handoff: @unchecked Sendable {
        var job: Job = .idle
        /// Bumped by the caller for every job; the futex word the helper sleeps on.
        let posted: UnsafeMutablePointer<Atomic<UInt32>>
        /// The generation of the last job the helper finished.
        let finished = Atomic<UInt32>(0)

        init() {
            posted = .allocate(capacity: 1)
            posted.initialize(to: Atomic(0))
        }

        deinit {
            posted.deinitialize(count: 1)
            posted.deallocate()
        }

        var word: UnsafeMutablePointer<UInt32> { UnsafeMutableRawPointer(posted).assumingMemoryBound(to: UInt32.self) }
    }

    /// Spins the idle helper makes before it sleeps on the futex.
    private static let idleSpins = 200
    /// Spins the caller makes waiting for the helper's half before it yields the core.
    private static let waitSpins = 1_000

    private let handoff = Handoff()
    /// Whether a caller owns the helper.
    private let busy = Atomic<Bool>(false)
    private let thread = Mutex<WorkerThread?>(nil)

    /// Starts the helper; `work` runs each job on the helper's thread.
    init(name: String, work: @escaping @Sendable (Job) -> Void) {
        let handoff = self.handoff
        let started = WorkerThread(name: name) {
            var seen: UInt32 = 0
            while true {
                var spins = 0
                while handoff.posted.pointee.load(ordering: .acquiring) == seen {
                    spins += 1
                    if spins < Self.idleSpins { mirrord_cpu_relax(); continue }
                    _ = mirrord_futex_wait(handoff.word, seen, 0)
                }
                seen = handoff.posted.pointee.load(ordering: .acquiring)
                let job = handoff.job
                if case .quit = job { return }
                work(job)
                handoff.finished.store(seen, ordering: .releasing)
            }
        }
        thread.withLock { $0 = started }
    }

    deinit { stop() }

    /// Ends the helper's thread (idempotent); waits for a job in progress first.
    func stop() {
        guard let running = thread.withLock({ t -> WorkerThread? in
            defer { t = nil }
            return t
        }) else { return }
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
        post(.quit)
        running.join()
        busy.store(false, ordering: .releasing)
    }

    /// Runs `job` on the helper while the caller runs `alongside`, and returns when both are done.
    /// Returns false, running nothing, when the helper is owned by another caller or stopped.
    func run(_ job: Job, alongside: () -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        guard thread.withLock({ $0 != nil }) else {
            busy.store(false, ordering: .releasing)
            return false
        }
        let generation = post(job)
        alongside()
        var spins = 0
        while handoff.finished.load(ordering: .acquiring) != generation {
            spins += 1
            if spins < Self.waitSpins { mirrord_cpu_relax() } else { sched_yield() }
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    @discardableResult
    private func post(_ job: Job) -> UInt32 {
        handoff.job = job
        let generation = handoff.posted.pointee.add(1, ordering: .releasing).newValue
        mirrord_futex_wake_all(handoff.word)
        return generation
    }
}
