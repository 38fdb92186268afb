import Logging
import MirrorCore
import MirrordControl
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The go FIFO of a takeover waiting to be asked (`mirrord takeover --on-request --go-fifo PATH`):
/// a line `go TOKEN` written there tells the takeover to go (``TakeoverOnRequest/go(_:)``).
///
/// Why a FIFO beside the control socket: a cluster manager's promote decides at one moment and
/// the takeover should start at that moment. Through the socket, a client process must start
/// first (for `mirrorctl`, a static Swift binary, 8 to 32 ms on a busy two-core host, the most
/// variable step of a planned switch-over); a shell writes one line to a FIFO with a builtin. The
/// outcome still comes through the socket, to a `take-over` that names the token, whose client
/// was started ahead.
///
/// The FIFO is opened for reading and writing: the open never waits for a writer, a writer's open
/// never waits for this reader, and a line written while nobody else holds the FIFO stays until it
/// is read. It is read on a thread of its own until ``stop()``.
final class TakeoverGoFIFO: Sendable {
    /// Why the go FIFO cannot be read: its path and the reason.
    struct OpenError: Error, CustomStringConvertible {
        /// The path and the reason, in one line.
        let description: String
    }

    /// The longest line kept: a token is at most 64 bytes.
    static let maximumLine = 128

    /// The FIFO's path.
    let path: String
    private let fd: Int32
    /// The pipe that wakes the reader to stop.
    private let wake: WakePipe
    /// The reading thread, until stopped.
    private let thread = Mutex<WorkerThread?>(nil)

    /// Opens the FIFO at `path` and reads it from now on, telling `gate` each go line; `logger`
    /// journals each line read.
    init(path: String, gate: TakeoverOnRequest, logger: Logger) throws(OpenError) {
        func failure(_ what: String) -> OpenError {
            OpenError(description: "--go-fifo \(path): \(what): \(String(cString: strerror(errno)))")
        }
        self.path = path
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw failure("cannot open it") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFIFO else {
            close(fd)
            throw OpenError(description: "--go-fifo \(path): not a FIFO (mkfifo makes one)")
        }
        let wake: WakePipe
        do throws(WakePipe.Failure) {
            wake = try WakePipe()
        } catch {
            close(fd)
            throw OpenError(
                description: "--go-fifo \(path): cannot make the pipe that stops its reader: \(error.reason)")
        }
        self.fd = fd
        self.wake = wake
        do throws(ThreadCreationError) {
            let reader = try WorkerThread(name: "mirrord-go") {
                Self.read(fd, path: path, wake: wake.readEnd, gate: gate, logger: logger)
            }
            thread.withLock { $0 = reader }
        } catch {
            close(fd)
            wake.close()
            throw OpenError(description: "--go-fifo \(path): cannot start its reader: \(error)")
        }
    }

    /// Stops reading and closes the FIFO; lines written later stay unread. Only the first call acts.
    func stop() {
        guard let reader = thread.withLock({ $0.take() }) else { return }
        wake.wake()
        reader.join()
        close(fd)
        wake.close()
    }

    /// A reader dropped without a stop still ends its thread and closes its descriptors.
    deinit { stop() }

    /// Reads lines from `fd` until `wake` is readable, telling `gate` each `go TOKEN`.
    private static func read(_ fd: Int32, path: String, wake: Int32, gate: TakeoverOnRequest, logger: Logger) {
        var line: [UInt8] = []
        line.reserveCapacity(maximumLine)
        var overlong = false
        var chunk = [UInt8](repeating: 0, count: 512)
        var watched = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let ready = poll(&watched, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error(
                    "go FIFO \(path): cannot wait for a line (\(String(cString: strerror(errno)))): no go is read; the takeover is still asked over the control socket",
                    metadata: ["mirrord_state": "waiting"])
                return
            }
            if watched[1].revents != 0 { return }
            guard watched[0].revents != 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }  // EAGAIN: another reader's, or a spurious wake
            for byte in chunk[..<count] {
                guard byte == UInt8(ascii: "\n") else {
                    if line.count < maximumLine { line.append(byte) } else { overlong = true }
                    continue
                }
                heard(String(decoding: line, as: UTF8.self), overlong: overlong, path: path, gate: gate, logger: logger)
                line.removeAll(keepingCapacity: true)
                overlong = false
            }
        }
    }

    /// One line of the FIFO: `go TOKEN` tells `gate` (first, then the journal: the takeover is
    /// on its way before the line is logged); anything else is journalled and ignored.
    private static func heard(_ text: String, overlong: Bool, path: String, gate: TakeoverOnRequest, logger: Logger) {
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        if !overlong, words.count == 2, words[0] == "go", TakeoverRequest.isToken(String(words[1])) {
            let token = String(words[1])
            gate.go(token)
            logger.info(
                "told to go through the go FIFO (go \(token))",
                metadata: ["mirrord_state": "waiting", "go": "\(token)"])
            return
        }
        let shown = overlong ? "a line longer than \(maximumLine) bytes" : "\"\(text.prefix(80))\""
        logger.warning(
            "go FIFO \(path): ignored \(shown): only \"go TOKEN\" (1 to 64 of A-Z a-z 0-9 . _ -) tells the takeover to go",
            metadata: ["mirrord_state": "waiting"])
    }
}
