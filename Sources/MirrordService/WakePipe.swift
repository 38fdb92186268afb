#if canImport(Glibc)
import Glibc
#endif

/// A pipe that wakes a thread's `poll(2)` loop to stop: the loop watches ``readEnd`` among its
/// descriptors, and another thread calls ``wake()``. Both ends are close-on-exec, so no child
/// holds the loop's stop.
///
/// Shared by the control server and the takeover's go FIFO, each a loop on a thread of its own
/// that is stopped from another.
struct WakePipe: Sendable {
    /// Why the pipe could not be made: `pipe(2)`'s errno.
    struct Failure: Error {
        /// The errno.
        let code: Int32
        /// What the errno says, for a message.
        var reason: String { String(cString: strerror(code)) }
    }

    /// The end a loop polls: readable once ``wake()`` was called.
    let readEnd: Int32
    private let writeEnd: Int32

    /// A new pipe.
    init() throws(Failure) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Failure(code: errno) }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// Makes ``readEnd`` readable: the loop polling it stops.
    func wake() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    /// Closes both ends (once the loop has stopped).
    func close() {
        _ = Glibc.close(readEnd)
        _ = Glibc.close(writeEnd)
    }
}
