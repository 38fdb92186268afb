import MirrorCore
import Synchronization

/// Runs `body` on a thread of its own and awaits its result: the duplex engine and the lockstep
/// scrub are CPU-bound and must not block the cooperative pool that serves signals.
func onWorkerThread<T: Sendable>(named name: String, _ body: @escaping @Sendable () -> T) async -> T {
    let thread = Mutex<WorkerThread?>(nil)
    let result = await withCheckedContinuation { continuation in
        thread.withLock {
            $0 = WorkerThread(name: name) { continuation.resume(returning: body()) }
        }
    }
    thread.withLock { $0?.join() }
    return result
}
