#if canImport(Glibc)
import Glibc
#endif

/// A thread could not be created: the process or its user is at a thread limit, or out of
/// address space for the thread's stack.
public struct ThreadCreationError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The thread that could not be created, for example `mirrord-cpu3`.
    public var name: String
    /// What `pthread_create` returned (`EAGAIN`: a limit on threads or memory).
    public var errno: Int32

    /// Creates an error.
    public init(name: String, errno: Int32) {
        self.name = name
        self.errno = errno
    }

    /// The failure and the limits that usually cause it.
    public var description: String {
        "cannot create thread \(name): \(String(cString: strerror(errno))); the process is at a limit on threads "
            + "(ulimit -u, LimitNPROC=, TasksMax=) or address space (ulimit -v, LimitAS=)"
    }
}
