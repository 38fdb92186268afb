import CNBD
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to an NBD export: the remote spare's memory as a block device on another host.
///
/// Opened from any URI libnbd's `nbd_connect_uri` reads — `nbd://host[:port]/export`,
/// `nbd+unix:///export?socket=PATH`, `nbds://…` — it reports what the server negotiated (size,
/// read-only, flush, FUA, multi-conn) and carries the reads, the flush and, through
/// ``NBDPipelinedWriter``, the pipelined writes the duplex copy needs.
///
/// Every call that waits on the network (the connect and handshake, a read, a flush, the
/// disconnect) is libnbd's asynchronous form driven by `nbd_poll`, bounded by ``stallTimeout``: a
/// server that stops answering (the link down, the host stopped) fails the call with ETIMEDOUT
/// within that time instead of when TCP gives up, minutes later.
///
/// Sendable: libnbd documents its handle as safe to use from several threads (every call takes the
/// handle's lock, see "SYNCHRONOUS VS ASYNCHRONOUS API" in libnbd(3)), and its error state is
/// thread-local, read here right after the failing call on the same thread. What libnbd does not
/// make atomic is a *sequence* of calls: a synchronous call on one thread runs the state machine and
/// so can run the completion callbacks of another thread's asynchronous writes. Every operation
/// therefore holds `exclusive`, which also owns the completion slots those callbacks write to.
package final class NBDExport: Sendable {
    /// The URI the export was opened from, for messages.
    package let uri: String
    /// The TLS credentials the connection was opened with, nil for none.
    package let tls: NBDTLS?
    /// Whether the session is encrypted: TLS was negotiated with the server
    /// (`nbd_get_tls_negotiated`). Always true when ``tls`` is set (the connect fails otherwise).
    package let isTLS: Bool
    /// The export's size in bytes, as the server announced it.
    package let size: UInt64
    /// Whether the server refuses writes (`nbd_is_read_only`).
    package let isReadOnly: Bool
    /// Whether the server accepts flush, which makes earlier writes durable (`nbd_can_flush`).
    package let canFlush: Bool
    /// Whether a write may carry Force Unit Access, durable on completion (`nbd_can_fua`).
    package let canFUA: Bool
    /// Whether several connections to this export see one another's writes once flushed, so a
    /// large copy may be split across them (`nbd_can_multi_conn`).
    package let canMultiConn: Bool
    /// The largest request the transport sends: the server's advertised maximum block size when it
    /// gives one, else 32 MiB, the NBD protocol's limit every server accepts.
    package let maximumRequestBytes: Int
    /// How long a wait on the server may pass with no progress at all (no byte sent, no reply
    /// read) before the operation fails with ETIMEDOUT; nil waits as long as TCP does. After such
    /// a failure a request may still be in flight, its buffer still libnbd's: the export takes no
    /// more operations.
    package let stallTimeout: Duration?
    /// ``stallTimeout`` as `nbd_poll`'s timeout in milliseconds, -1 for none.
    let stallMilliseconds: Int32

    /// The libnbd handle. `nonisolated(unsafe)`: the pointer never changes, and libnbd serialises
    /// calls on it (see the type's documentation); sequences of calls hold `exclusive`.
    nonisolated(unsafe) let handle: OpaquePointer
    /// Held for every operation on the handle; owns the pipelined writer's completion slots.
    let exclusive: Mutex<NBDCompletionSlots>

    /// Connects to `uri` and negotiates the export.
    ///
    /// - Parameters:
    ///   - uri: an NBD URI; plain `nbd://` and `nbd+unix://` need no TLS, `nbds://` requires it.
    ///   - tls: the credentials for an `nbds://` URI (see ``NBDTLS``), set before the connect with
    ///     TLS required; a plain URI is then refused (EPERM). nil leaves libnbd's defaults (for
    ///     `nbds://`, the certificates of `/etc/pki/libnbd` or `~/.pki/libnbd`, if any).
    ///   - writable: refuse a read-only export (EROFS) — the spare must take writes. Pass `false`
    ///     to open one for reading (verification, takeover).
    ///   - stallTimeout: the longest wait without progress, for the connect and handshake and for
    ///     every later read, flush and disconnect (see ``stallTimeout``); nil for none. A host
    ///     name is still resolved by a blocking `getaddrinfo` before the timeout applies.
    /// - Throws: ``NBDError`` naming the URI: one that does not parse, no server listening, an export
    ///   the server does not have, a server that does not answer within `stallTimeout`
    ///   (ETIMEDOUT), a TLS handshake that fails (the message then begins with ``NBDTLS/description``),
    ///   or a read-only export when `writable` is set.
    package init(uri: String, tls: NBDTLS? = nil, writable: Bool = true, stallTimeout: Duration? = nil)
        throws(NBDError)
    {
        guard let handle = nbd_create() else { throw NBDError.last("create a libnbd handle") }
        /// Closes the handle on the way out of a failed open.
        func fail(_ error: NBDError) -> NBDError {
            nbd_close(handle)
            return error
        }
        // A spare is a server, never a local file named in the URI (`tls-psk-file`…): refuse them
        // explicitly rather than rely on the default.
        guard nbd_set_uri_allow_local_file(handle, false) != -1 else {
            throw fail(NBDError.last("configure \(uri)"))
        }
        if let tls, !tls.configure(handle) {
            throw fail(NBDError.last("configure \(tls.description) for \(uri)"))
        }
        /// A failure of the connect or handshake, said with the credentials when there are some:
        /// libnbd's own message ("server disconnected unexpectedly") does not say TLS was tried.
        func connectFailure(_ error: NBDError) -> NBDError {
            guard let tls else { return error }
            return NBDError(
                operation: error.operation, message: "\(tls.description): \(error.message)", errno: error.errno)
        }
        // nbd_connect_uri is nbd_aio_connect_uri and nbd_poll(-1) until connected; the same with
        // the stall timeout instead, so a server that never answers fails the open in time.
        let stallMilliseconds = Self.pollMilliseconds(stallTimeout)
        guard nbd_aio_connect_uri(handle, uri) != -1 else {
            throw fail(connectFailure(NBDError.last("connect \(uri)")))
        }
        while nbd_aio_is_connecting(handle) == 1 {
            do throws(NBDError) {
                try Self.poll(handle, stallMilliseconds, operation: "connect \(uri)")
            } catch {
                throw fail(connectFailure(error))
            }
        }
        guard nbd_aio_is_ready(handle) == 1 else {
            throw fail(
                connectFailure(
                    NBDError(
                        operation: "connect \(uri)", message: "the connection closed during the handshake",
                        errno: ENOTCONN)))
        }
        let negotiated = nbd_get_tls_negotiated(handle)
        let size = nbd_get_size(handle)
        guard size >= 0 else { throw fail(NBDError.last("size of \(uri)")) }
        let readOnly = nbd_is_read_only(handle)
        let flush = nbd_can_flush(handle)
        let fua = nbd_can_fua(handle)
        let multiConn = nbd_can_multi_conn(handle)
        guard readOnly != -1, flush != -1, fua != -1, multiConn != -1 else {
            throw fail(NBDError.last("negotiate \(uri)"))
        }
        if writable, readOnly == 1 {
            try? Self.disconnect(handle, stallMilliseconds, operation: "disconnect \(uri)")
            throw fail(
                NBDError(
                    operation: "open \(uri) for writing", message: "the server exports it read-only",
                    errno: EROFS))
        }
        let advertised = nbd_get_block_size(handle, Int32(LIBNBD_SIZE_MAXIMUM))
        self.uri = uri
        self.tls = tls
        self.isTLS = negotiated == 1
        self.size = UInt64(size)
        self.isReadOnly = readOnly == 1
        self.canFlush = flush == 1
        self.canFUA = fua == 1
        self.canMultiConn = multiConn == 1
        self.maximumRequestBytes = advertised > 0 ? Int(min(advertised, 32 << 20)) : 32 << 20
        self.stallTimeout = stallTimeout
        self.stallMilliseconds = stallMilliseconds
        self.handle = handle
        self.exclusive = Mutex(NBDCompletionSlots())
    }

    /// Closes the connection and frees the handle (`nbd_close`); the outcome of any write not yet
    /// completed is lost, so callers wait for their writes (the writer does) and ``shutdown()`` for
    /// a clean end the server sees. `nbd_close` is not safe while another thread uses the handle;
    /// none can, the export being released.
    deinit {
        nbd_close(handle)
    }

    /// Reads `buffer.count` bytes at `offset` into `buffer` (`nbd_aio_pread`, one request at a
    /// time), in requests no larger than ``maximumRequestBytes``. For verification and for
    /// takeover, when the spare's copy is the only one left.
    ///
    /// - Throws: ``NBDError`` for a range past the end, a server error, a lost connection or a
    ///   server that does not answer within ``stallTimeout`` (ETIMEDOUT; the request still holds
    ///   `buffer`, so the export takes no more operations and no late reply can reach it).
    package func read(into buffer: UnsafeMutableRawBufferPointer, offset: UInt64) throws(NBDError) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            try slots.checkUsable()
            var done = 0
            while done < buffer.count {
                let count = min(buffer.count - done, maximumRequestBytes)
                let at = offset + UInt64(done)
                let operation = "read \(count) bytes at 0x\(String(at, radix: 16)) of \(uri)"
                let cookie = nbd_aio_pread(handle, base + done, count, at, NBDExport.noCompletion, 0)
                guard cookie != -1 else { throw NBDError.last(operation) }
                try wait(for: cookie, operation: operation, slots: &slots)
                done += count
            }
        }
    }

    /// Reads `count` bytes at `offset` into a new array: the whole-range read, for checks that
    /// compare a region of the spare with the active copy.
    package func read(offset: UInt64, count: Int) throws(NBDError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var failure: NBDError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(NBDError) { try read(into: buffer, offset: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Makes every completed write durable on the server (`nbd_aio_flush`).
    ///
    /// - Throws: ``NBDError`` if the server cannot flush (it did not advertise flush), failed to,
    ///   or did not answer within ``stallTimeout`` (ETIMEDOUT; the export then takes no more
    ///   operations).
    package func flush() throws(NBDError) {
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            try slots.checkUsable()
            guard canFlush else {
                throw NBDError(operation: "flush \(uri)", message: "the server does not support flush", errno: ENOTSUP)
            }
            let cookie = nbd_aio_flush(handle, NBDExport.noCompletion, 0)
            guard cookie != -1 else { throw NBDError.last("flush \(uri)") }
            try wait(for: cookie, operation: "flush \(uri)", slots: &slots)
        }
    }

    /// Disconnects gracefully (`nbd_aio_disconnect`, then waits for the server to close, within
    /// ``stallTimeout``): the server sees a clean end of the session. The handle is freed when the
    /// export is released.
    ///
    /// - Throws: ``NBDError`` for an export an earlier failure left unusable (its error), or a
    ///   server that does not close within ``stallTimeout`` (ETIMEDOUT).
    package func shutdown() throws(NBDError) {
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            // A request may still hold a buffer of the caller's: running the state machine now
            // could land its late reply there.
            try slots.checkUsable()
            do throws(NBDError) {
                try Self.disconnect(handle, stallMilliseconds, operation: "disconnect \(uri)")
            } catch {
                if error.errno == ETIMEDOUT { slots.broken = error }
                throw error
            }
        }
    }

    /// Sends the disconnect (`nbd_aio_disconnect`) and waits, each wait bounded by `milliseconds`,
    /// until the server has closed the connection: `nbd_shutdown` with a bound. Only with no
    /// command in flight.
    private static func disconnect(_ handle: OpaquePointer, _ milliseconds: Int32, operation: String) throws(NBDError) {
        if nbd_aio_is_ready(handle) == 1 {
            guard nbd_aio_disconnect(handle, 0) != -1 else { throw NBDError.last(operation) }
        }
        while nbd_aio_is_closed(handle) == 0, nbd_aio_is_dead(handle) == 0 {
            try poll(handle, milliseconds, operation: operation)
        }
    }

    /// Runs the state machine until the command `cookie` completes, and retires it
    /// (`nbd_aio_command_completed`): what libnbd's synchronous calls do, with ``stallTimeout``
    /// bounding each wait. When the wait fails with the command still in flight (the timeout),
    /// libnbd still holds its buffer and may complete it later: the export is marked unusable
    /// (`slots.broken`), so no later call runs the state machine that would.
    private func wait(
        for cookie: Int64, operation: String, slots: inout NBDCompletionSlots
    ) throws(NBDError) {
        while true {
            switch nbd_aio_command_completed(handle, UInt64(cookie)) {
            case 0: break
            case -1: throw NBDError.last(operation)
            default: return
            }
            do throws(NBDError) {
                try Self.poll(handle, stallMilliseconds, operation: operation)
            } catch {
                // A connection that died aborted the command (ENOTCONN): retire it. One still in
                // flight keeps the buffer.
                if nbd_aio_command_completed(handle, UInt64(cookie)) == 0 { slots.broken = error }
                throw error
            }
        }
    }

    /// Waits once for the state machine to make progress (`nbd_poll`): returns when it did,
    /// throws the failure libnbd reports (the connection lost, the handshake refused), or
    /// ETIMEDOUT when `milliseconds` passed with none. A poll a signal interrupted is progress
    /// of none, not a failure: the caller's loop polls again.
    static func poll(_ handle: OpaquePointer, _ milliseconds: Int32, operation: String) throws(NBDError) {
        switch nbd_poll(handle, milliseconds) {
        case -1:
            let error = NBDError.last(operation)
            guard error.errno == EINTR else { throw error }
        case 0:
            throw NBDError(
                operation: operation, message: "no answer from the server within \(milliseconds) ms",
                errno: ETIMEDOUT)
        default: return
        }
    }

    /// `timeout` as `nbd_poll`'s timeout: -1 (block) for nil, else at least 1 ms and at most
    /// Int32's worth.
    static func pollMilliseconds(_ timeout: Duration?) -> Int32 {
        guard let timeout else { return -1 }
        let (seconds, attoseconds) = timeout.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(1, milliseconds))
    }

    /// No completion callback: the command is retired with `nbd_aio_command_completed`.
    static var noCompletion: nbd_completion_callback {
        nbd_completion_callback(callback: nil, user_data: nil, free: nil)
    }
}
