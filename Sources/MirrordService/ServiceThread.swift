import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// The service's own thread for its CPU-bound jobs, the duplex and then each scrub slice, run one
/// at a time. It is created once, at start-up: the cooperative pool that serves signals is never
/// blocked by a long job, and nothing in lockstep depends on creating a thread (which a thread
/// limit or a busy host can refuse at any time).
final class ServiceThread: Sendable {
    /// The job slot, under a POSIX mutex and condition variable (the thread sleeps between jobs).
    ///
    /// `@unchecked Sendable`: `job` and `quitting` are read and written only with `mutex` held.
    private final class Slot: @unchecked Sendable {
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var job: (@Sendable () -> Void)?
        private var quitting = false

        init() {
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(mutex)
            changed.deallocate()
            mutex.deallocate()
        }

        /// Hands `work` to the thread, after the job before it has been taken.
        func post(_ work: @escaping @Sendable () -> Void) {
            pthread_mutex_lock(mutex)
            while job != nil { pthread_cond_wait(changed, mutex) }
            job = work
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }

        /// Asks the thread to return once the job it runs (if any) is done.
        func quit() {
            pthread_mutex_lock(mutex)
            quitting = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }

        /// The thread's loop: runs each job posted until asked to quit.
        func serve() {
            while true {
                pthread_mutex_lock(mutex)
                while job == nil && !quitting { pthread_cond_wait(changed, mutex) }
                let next = job
                job = nil
                pthread_cond_broadcast(changed)
                pthread_mutex_unlock(mutex)
                guard let next else { return }
                next()
            }
        }
    }

    private let slot: Slot
    private let thread: WorkerThread

    /// Starts the thread, named `name`.
    init(name: String) throws(ThreadCreationError) {
        let slot = Slot()
        self.slot = slot
        thread = try WorkerThread(name: name) { slot.serve() }
    }

    deinit { stop() }

    /// Runs `body` on the thread and awaits its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            slot.post { continuation.resume(returning: body()) }
        }
    }

    /// Ends the thread after its current job (idempotent).
    func stop() {
        slot.quit()
        thread.join()
    }
}
