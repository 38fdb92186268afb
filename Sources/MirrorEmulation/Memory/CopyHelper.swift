import CMirrorShims
import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A second copying thread that lives as long as the machine and sleeps on a futex between jobs,
/// so that a long copy (the full copy, a blackout's final frames) is shared between two cores
/// without creating a thread each time, and never inside a blackout.
///
/// One job at a time: ``run(_:alongside:)`` posts the job, runs the caller's side of it, then
/// either withdraws the job (the helper had not woken up yet) or waits for the helper to finish
/// its side. Both sides take their pieces of the work from the two ends of one ``SharedPieces``,
/// so a helper that wakes late finds less to do and never makes the job longer than the caller
/// alone would.
///
/// A caller that finds the helper busy (another thread copying) is told so and does the whole job
/// itself. The helper's thread holds neither the helper nor its owner (give `work` a weak
/// reference), so dropping the helper stops its thread.
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

    /// Where the current job is: posted, claimed by the helper, or over (done or withdrawn).
    /// The state word holds `generation << 2 | phase`.
    private enum Phase: UInt64 {
        case posted = 0
        case claimed = 1
        case over = 2
    }

    /// What caller and helper share.
    ///
    /// `@unchecked Sendable`: `job` is written only by the caller that owns the helper (won
    /// through `busy`) while the state word says `over`, before it publishes the job with a
    /// release store of `posted`; the helper reads it only after winning the job with an
    /// acquiring compare-exchange from `posted` to `claimed`, and the caller does not write it
    /// again before the helper stores `over`.
    private final class Handoff: @unchecked Sendable {
        var job: Job = .idle
        /// The current job's generation and phase.
        let state = Atomic<UInt64>(Phase.over.rawValue)
        /// The helper thread's kernel ID (0 until it runs).
        let threadID = Atomic<Int32>(0)
        /// Bumped for every job; the futex word the helper sleeps on.
        let doorbell: UnsafeMutablePointer<Atomic<UInt32>>
        /// When the current job was posted (``MonotonicClock``), for the helper's wake-up time.
        let postedAt = Atomic<UInt64>(0)
        /// Nanoseconds from the last job's post to the helper claiming it; `UInt64.max` while it
        /// is unclaimed, and for a job the caller withdrew (it copied alone).
        let lastWake = Atomic<UInt64>(.max)

        init() {
            doorbell = .allocate(capacity: 1)
            doorbell.initialize(to: Atomic(0))
        }

        deinit {
            doorbell.deinitialize(count: 1)
            doorbell.deallocate()
        }

        var word: UnsafeMutablePointer<UInt32> {
            UnsafeMutableRawPointer(doorbell).assumingMemoryBound(to: UInt32.self)
        }

        func ring() {
            doorbell.pointee.add(1, ordering: .releasing)
            mirrord_futex_wake_all(word)
        }
    }

    /// Spins the idle helper makes before it sleeps on the futex.
    private static let idleSpins = 200
    /// Spins the caller makes waiting for the helper's side before it yields the core.
    private static let waitSpins = 1_000

    private let handoff = Handoff()
    /// Whether a caller owns the helper.
    private let busy = Atomic<Bool>(false)
    /// The CPU the helper was last kept off (-1: none yet).
    private let keptOff = Atomic<Int32>(-1)
    private let generation = Atomic<UInt64>(0)
    private let thread = Mutex<WorkerThread?>(nil)

    /// Starts the helper; `work` runs each job on the helper's thread.
    init(name: String, work: @escaping @Sendable (Job) -> Void) throws(ThreadCreationError) {
        let handoff = self.handoff
        let started = try WorkerThread(name: name) {
            handoff.threadID.store(mirrord_thread_id(), ordering: .releasing)
            while true {
                var spins = 0
                var state: UInt64
                while true {
                    // The doorbell before the state: a job posted after this load rings it, and
                    // the futex wait below then returns at once.
                    let bell = handoff.doorbell.pointee.load(ordering: .acquiring)
                    state = handoff.state.load(ordering: .acquiring)
                    if state & 3 == Phase.posted.rawValue { break }
                    spins += 1
                    if spins < Self.idleSpins {
                        mirrord_cpu_relax()
                    } else {
                        _ = mirrord_futex_wait(handoff.word, bell, 0)
                        spins = 0
                    }
                }
                let claimed = state & ~3 | Phase.claimed.rawValue
                // Lost to a withdrawal: the caller did the job alone.
                guard handoff.state.compareExchange(expected: state, desired: claimed, ordering: .acquiring).exchanged
                else {
                    continue
                }
                handoff.lastWake.store(
                    MonotonicClock.nanoseconds() &- handoff.postedAt.load(ordering: .relaxed), ordering: .relaxed)
                let job = handoff.job
                if case .quit = job {
                    handoff.state.store(state & ~3 | Phase.over.rawValue, ordering: .releasing)
                    return
                }
                work(job)
                handoff.state.store(state & ~3 | Phase.over.rawValue, ordering: .releasing)
            }
        }
        thread.withLock { $0 = started }
        // Its kernel ID, which the first job's placement needs, comes within microseconds.
        while handoff.threadID.load(ordering: .acquiring) == 0 { sched_yield() }
    }

    deinit { stop() }

    /// The CPU the helper was last kept off (-1: none yet).
    var keptOffCPU: Int32 { keptOff.load(ordering: .relaxed) }

    /// The helper thread's kernel ID (for its `/proc/self/task/ID/schedstat`).
    var threadID: Int32 { handoff.threadID.load(ordering: .acquiring) }

    /// Jobs posted since the helper started.
    var jobsPosted: UInt64 { generation.load(ordering: .relaxed) }

    /// How long the helper took to take up the last job posted, from the post to its claim; nil
    /// when it did not before the caller had done the whole job alone (or none was posted). Read
    /// after ``run(_:alongside:)`` returns.
    var lastWakeNanoseconds: UInt64? {
        let wake = handoff.lastWake.load(ordering: .relaxed)
        return wake == .max ? nil : wake
    }

    /// Ends the helper's thread (idempotent); waits for a job in progress first.
    func stop() {
        guard
            let running = thread.withLock({ t -> WorkerThread? in
                defer { t = nil }
                return t
            })
        else { return }
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
        post(.quit)
        running.join()
        busy.store(false, ordering: .releasing)
    }

    /// Posts `job` to the helper while the caller runs `alongside`, then withdraws the job if the
    /// helper has not claimed it, or waits until the helper's side is done. `job` and `alongside`
    /// must share their work (a common cursor), so that either may end up doing all of it.
    /// Returns how many nanoseconds the caller waited for the helper's side after its own, or nil,
    /// running nothing, when the helper is owned by another caller or stopped.
    func run(_ job: Job, alongside: () -> Void) -> UInt64? {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return nil }
        guard thread.withLock({ $0 != nil }) else {
            busy.store(false, ordering: .releasing)
            return nil
        }
        keepOffCallersCPU()
        let posted = post(job)
        alongside()
        let withdrawn = posted & ~3 | Phase.over.rawValue
        var waited: UInt64 = 0
        if !handoff.state.compareExchange(expected: posted, desired: withdrawn, ordering: .acquiring).exchanged {
            let waitStart = MonotonicClock.nanoseconds()
            var spins = 0
            while handoff.state.load(ordering: .acquiring) & 3 != Phase.over.rawValue {
                spins += 1
                if spins < Self.waitSpins { mirrord_cpu_relax() } else { sched_yield() }
            }
            waited = MonotonicClock.nanoseconds() &- waitStart
        }
        busy.store(false, ordering: .releasing)
        return waited
    }

    /// Keeps the helper off the CPU the caller runs on, so that the job's wake-up starts it on
    /// another core. The caller copies without sleeping, and the kernel tends to wake a thread on
    /// its waker's core: there the helper waited for the caller's time slice to end, or took the
    /// core from it, and the two sides ran one after the other on one core while the other
    /// idled (seen with `perf sched` in the bench's blackouts: the caller off its CPU for up to
    /// 5.7 ms of a copy while the helper ran on the same core). A system call only when the
    /// caller's CPU changed since the last job.
    private func keepOffCallersCPU() {
        let cpu = mirrord_current_cpu()
        let helper = threadID
        guard cpu >= 0, helper != 0, keptOff.load(ordering: .relaxed) != cpu else { return }
        _ = mirrord_run_away_from(helper, cpu)
        keptOff.store(cpu, ordering: .relaxed)
    }

    /// Publishes `job` (the caller owns the helper, and no job is in progress); returns the state
    /// word of the posted job.
    @discardableResult
    private func post(_ job: Job) -> UInt64 {
        handoff.job = job
        handoff.lastWake.store(.max, ordering: .relaxed)
        handoff.postedAt.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
        let posted = generation.add(1, ordering: .relaxed).newValue << 2 | Phase.posted.rawValue
        handoff.state.store(posted, ordering: .releasing)
        handoff.ring()
        return posted
    }
}
