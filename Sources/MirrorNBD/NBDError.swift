import CNBD

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed NBD operation: what was being done, libnbd's message and the errno behind it.
///
/// Every failure of the transport is one of these, so an operator reads the export and the step
/// that failed (`connect nbd://10.0.0.2/spare: Connection refused`) rather than a bare code, and
/// code can still branch on `errno` (ECONNREFUSED, EROFS, EIO…).
package struct NBDError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The step and its object, e.g. `connect nbd://10.0.0.2/spare` or `write 4096 bytes at 0x3000`.
    package var operation: String
    /// libnbd's message (`nbd_get_error`) without its `nbd_function: ` prefix, or `strerror` of
    /// the server's errno for a request the server failed.
    package var message: String
    /// The errno libnbd or the server reported; 0 when libnbd had none to give (the message says).
    package var errno: Int32

    /// An error from its parts; `message` is kept as given.
    package init(operation: String, message: String, errno: Int32) {
        self.operation = operation
        self.message = message
        self.errno = errno
    }

    /// `operation: message`, the form an operator reads in the journal.
    package var description: String { "\(operation): \(message)" }

    /// The error of the libnbd call that just failed on this thread.
    ///
    /// libnbd keeps its error in thread-local storage, valid until the next libnbd call on the same
    /// thread, so this must run right after the failing call and before any other.
    static func last(_ operation: String) -> NBDError {
        let code = nbd_get_errno()
        var message = nbd_get_error().map { String(cString: $0) } ?? ""
        // libnbd prefixes the function that failed ("nbd_connect_uri: connect: …"); the operation
        // already names the step, so keep what follows.
        if message.hasPrefix("nbd_"), let colon = message.firstIndex(of: ":") {
            message = String(message[message.index(after: colon)...].drop(while: { $0 == " " }))
        }
        if message.isEmpty { message = code != 0 ? Self.text(of: code) : "unknown libnbd error" }
        return NBDError(operation: operation, message: message, errno: code)
    }

    /// An error the server (or libnbd, for a command it abandoned) reported for one request.
    static func request(_ operation: String, errno code: Int32) -> NBDError {
        NBDError(operation: operation, message: Self.text(of: code), errno: code)
    }

    /// `strerror` as a Swift string.
    static func text(of code: Int32) -> String {
        strerror(code).map { String(cString: $0) } ?? "errno \(code)"
    }
}
