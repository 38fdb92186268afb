import MirrordControl
import Synchronization

/// The control socket's answers, switched once the daemon has something else to answer with: a
/// takeover waiting to be asked answers first (``TakeoverOnRequest``), the running service once
/// the machine it took over runs. The server keeps one handler for its life; this is it.
final class ControlHandler: Sendable {
    private let current: Mutex<@Sendable (ControlRequest) -> ControlReply>

    /// Answers with `handle` until ``switchTo(_:)``.
    init(_ handle: @escaping @Sendable (ControlRequest) -> ControlReply) {
        current = Mutex(handle)
    }

    /// Answers with `handle` from now on.
    func switchTo(_ handle: @escaping @Sendable (ControlRequest) -> ControlReply) {
        current.withLock { $0 = handle }
    }

    /// The reply to `request`, from the handler in force.
    func reply(to request: ControlRequest) -> ControlReply {
        let handle = current.withLock { $0 }
        return handle(request)
    }
}
