import CMirrorShims

#if canImport(Glibc)
import Glibc
#endif

/// A joinable POSIX thread for mirrord's long-running loops: the duplex engine, the emulated CPUs
/// and the DMA engine.
///
/// Swift concurrency's cooperative pool must not be blocked by CPU-bound, spinning or sleeping
/// loops, so each of them gets a thread of its own.
public final class WorkerThread: @unchecked Sendable {
    // @unchecked: `thread` is written once in init, before the thread is shared, and read by join.
    private var thread = pthread_t()
    private var joined = false

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread named `name` (at most 15 characters show in `top`).
    public init(name: String, body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        mirrord_set_thread_name(thread, String(name.prefix(15)))
    }

    /// Waits for the thread to return.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}
