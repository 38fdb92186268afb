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
/// Sendable: libnbd documents its handle as safe to use from several threads (every call takes the
/// handle's lock, see "SYNCHRONOUS VS ASYNCHRONOUS API" in libnbd(3)), and its error state is
/// thread-local, read here right after the failing call on the same thread. What libnbd does not
/// make atomic is a *sequence* of calls: a synchronous call on one thread runs the state machine and
/// so can run the completion callbacks of another thread's asynchronous writes. Every operation
/// therefore holds `exclusive`, which also owns the completion slots those callbacks write to.
package final class NBDExport: Sendable {
    /// The URI the export was opened from, for messages.
    package let uri: String
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

    /// The libnbd handle. `nonisolated(unsafe)`: the pointer never changes, and libnbd serialises
    /// calls on it (see the type's documentation); sequences of calls hold `exclusive`.
    nonisolated(unsafe) let handle: OpaquePointer
    /// Held for every operation on the handle; owns the pipelined writer's completion slots.
    let exclusive: Mutex<NBDCompletionSlots>

    /// Connects to `uri` and negotiates the export.
    ///
    /// - Parameters:
    ///   - uri: an NBD URI; plain `nbd://` and `nbd+unix://` need no TLS, `nbds://` requires it.
    ///   - writable: refuse a read-only export (EROFS) — the spare must take writes. Pass `false`
    ///     to open one for reading (verification, takeover).
    /// - Throws: ``NBDError`` naming the URI: one that does not parse, no server listening, an export
    ///   the server does not have, or a read-only export when `writable` is set.
    package init(uri: String, writable: Bool = true) throws(NBDError) {
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
        guard nbd_connect_uri(handle, uri) != -1 else { throw fail(NBDError.last("connect \(uri)")) }
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
            _ = nbd_shutdown(handle, 0)
            throw fail(
                NBDError(
                    operation: "open \(uri) for writing", message: "the server exports it read-only",
                    errno: EROFS))
        }
        let advertised = nbd_get_block_size(handle, Int32(LIBNBD_SIZE_MAXIMUM))
        self.uri = uri
        self.size = UInt64(size)
        self.isReadOnly = readOnly == 1
        self.canFlush = flush == 1
        self.canFUA = fua == 1
        self.canMultiConn = multiConn == 1
        self.maximumRequestBytes = advertised > 0 ? Int(min(advertised, 32 << 20)) : 32 << 20
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

    /// Reads `buffer.count` bytes at `offset` into `buffer` (`nbd_pread`), in requests no larger
    /// than ``maximumRequestBytes``. For verification and for takeover, when the spare's copy is
    /// the only one left.
    ///
    /// - Throws: ``NBDError`` for a range past the end, a server error or a lost connection.
    package func read(into buffer: UnsafeMutableRawBufferPointer, offset: UInt64) throws(NBDError) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            try slots.checkUsable()
            var done = 0
            while done < buffer.count {
                let count = min(buffer.count - done, maximumRequestBytes)
                let at = offset + UInt64(done)
                guard nbd_pread(handle, base + done, count, at, 0) != -1 else {
                    throw NBDError.last("read \(count) bytes at 0x\(String(at, radix: 16)) of \(uri)")
                }
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

    /// Makes every completed write durable on the server (`nbd_flush`).
    ///
    /// - Throws: ``NBDError`` if the server cannot flush (it did not advertise flush) or failed to.
    package func flush() throws(NBDError) {
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            try slots.checkUsable()
            guard canFlush else {
                throw NBDError(operation: "flush \(uri)", message: "the server does not support flush", errno: ENOTSUP)
            }
            guard nbd_flush(handle, 0) != -1 else { throw NBDError.last("flush \(uri)") }
        }
    }

    /// Disconnects gracefully (`nbd_shutdown`): the server sees a clean end of the session. The
    /// handle is freed when the export is released.
    package func shutdown() throws(NBDError) {
        try exclusive.withLock { (_: inout NBDCompletionSlots) throws(NBDError) in
            guard nbd_shutdown(handle, 0) != -1 else { throw NBDError.last("disconnect \(uri)") }
        }
    }
}
