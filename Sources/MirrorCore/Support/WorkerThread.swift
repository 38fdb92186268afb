import CMirrorShims

#if canImport(Glibc)
import Glibc
#endif

/// A joinable POSIX thread for mirrord's long-running loops: the duplex engine, the emulated CPUs
/// and the DMA engine.
///
/// Swift concurrency's cooperative pool must not be blocked by CPU-bound, spinning or sleeping
/// loops, so each of them gets a thread of its own. Creating one can fail (a thread limit, an
/// address-space limit): that is a thrown ``ThreadCreationError``, never a trap and never a retry.
public final class WorkerThread: @unchecked Sendable {
    // @unchecked: `thread` is written once in init, before the thread is shared, and read by join.
    private var thread = pthread_t()
    private var joined = false

    /// The stack of each worker thread (1 MiB): the loops are shallow, and the default 8 MiB of
    /// address space per thread matters under an address-space limit (`LimitAS=`, `ulimit -v`).
    public static let stackSize = 1 << 20

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread named `name` (at most 15 characters show in `top`).
    public init(name: String, body: @escaping @Sendable () -> Void) throws(ThreadCreationError) {
        let context = Unmanaged.passRetained(Body(body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, Self.stackSize)
        let rc = pthread_create(
            &thread, &attributes,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                body.run()
                return nil
            }, context.toOpaque())
        guard rc == 0 else {
            context.release()
            joined = true
            throw ThreadCreationError(name: name, errno: rc)
        }
        mirrord_set_thread_name(thread, String(name.prefix(15)))
    }

    /// Waits for the thread to return.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}
