import CNBD

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes many ranges of a memory buffer to an export with up to `maxInFlight` requests in flight,
/// then flushes: the copy of dirty frames to the remote spare.
///
/// One request at a time would pay a network round trip per frame; libnbd's asynchronous API
/// (`nbd_aio_pwrite`, `nbd_poll`) keeps the link busy instead. Adjacent ranges are merged into one
/// request up to `maxRequestBytes`. A request costs no allocation: its completion slot comes from
/// a set the export allocates once. A write error is never lost: the first request the server
/// fails (in completion order) is thrown, with its range, after every request in flight has
/// completed; a failure stops further submissions.
package struct NBDPipelinedWriter: Sendable {
    /// The export written to.
    package let export: NBDExport
    /// The most requests in flight at once.
    package let maxInFlight: Int
    /// The largest single request; adjacent ranges merge up to it, longer ones are split.
    package let maxRequestBytes: Int
    /// Whether every write carries Force Unit Access (durable when it completes, no flush needed).
    package let fua: Bool
    /// Added to every range's offset to find its place in the export.
    package let exportBase: UInt64
    /// How long a wait may pass with no progress at all (no byte sent, no reply read) before the
    /// write fails with ETIMEDOUT; nil waits forever. A stalled spare must not hang the duplex.
    package let stallTimeout: Duration?

    /// What one ``write(from:extents:)`` sent.
    package struct Summary: Hashable, Sendable {
        /// NBD write requests sent (after merging and splitting).
        package var requests: Int
        /// Bytes written.
        package var bytes: Int
        /// The most requests that were in flight at once (at most ``maxInFlight``).
        package var peakInFlight: Int
    }

    /// A writer for `export`.
    ///
    /// - Parameters:
    ///   - maxInFlight: requests in flight at once (at least 1).
    ///   - maxRequestBytes: the largest request, capped at the export's maximum (default 256 KiB,
    ///     nbdcopy's default request size).
    ///   - fua: write with Force Unit Access; the server must advertise it.
    ///   - exportBase: where offset 0 of the memory lands in the export.
    ///   - stallTimeout: the longest wait without progress; after it the write fails (ETIMEDOUT)
    ///     and the export, with requests still in flight, takes no more operations.
    /// - Throws: ``NBDError`` when FUA is asked of a server that does not offer it, or the export
    ///   is read-only.
    package init(
        export: NBDExport, maxInFlight: Int = 64, maxRequestBytes: Int = 256 << 10, fua: Bool = false,
        exportBase: UInt64 = 0, stallTimeout: Duration? = nil
    ) throws(NBDError) {
        precondition(maxInFlight >= 1 && maxRequestBytes >= 1, "a writer needs a request in flight and a size")
        guard !export.isReadOnly else {
            throw NBDError(operation: "write to \(export.uri)", message: "the export is read-only", errno: EROFS)
        }
        guard !fua || export.canFUA else {
            throw NBDError(
                operation: "write to \(export.uri) with FUA", message: "the server does not support FUA",
                errno: ENOTSUP)
        }
        self.export = export
        self.maxInFlight = maxInFlight
        self.maxRequestBytes = min(maxRequestBytes, export.maximumRequestBytes)
        self.fua = fua
        self.exportBase = exportBase
        self.stallTimeout = stallTimeout
    }

    /// Writes the frames numbered `frames` (each `frameSize` bytes at `frame × frameSize` in
    /// `memory`); ascending runs of adjacent frames become one request.
    package func write(
        from memory: UnsafeRawBufferPointer, frames: some Sequence<Int>, frameSize: Int
    ) throws(NBDError) -> Summary {
        try write(from: memory, extents: frames.lazy.map { NBDExtent(offset: $0 * frameSize, length: frameSize) })
    }

    /// Writes each extent of `memory` to the same offset (plus ``exportBase``) of the export, with
    /// up to ``maxInFlight`` requests in flight, and returns once all have completed.
    ///
    /// The writes are not durable until ``flush()`` (or unless the writer uses FUA). `extents` is
    /// read once, so a lazy sequence of dirty frames costs no array; an extent outside `memory` is
    /// a programming error and traps.
    /// - Throws: ``NBDError`` for the first request that failed (the server's errno and the range),
    ///   for a request libnbd refused to queue, or for the connection failing under them.
    package func write(
        from memory: UnsafeRawBufferPointer, extents: some Sequence<NBDExtent>
    ) throws(NBDError) -> Summary {
        guard let base = memory.baseAddress else { return Summary(requests: 0, bytes: 0, peakInFlight: 0) }
        let exportBase = exportBase
        return try write(
            extents.lazy.map { extent in
                // Checked as the extents go by: a single-pass sequence is read once.
                precondition(
                    extent.offset >= 0 && extent.offset + extent.length <= memory.count,
                    "extent \(extent) outside the \(memory.count)-byte memory")
                return NBDWrite(
                    source: base + extent.offset, length: extent.length, offset: exportBase + UInt64(extent.offset))
            })
    }

    /// Writes each of `writes` (bytes from anywhere in this process to any offset of the export:
    /// an epoch's staged frames to their places in the image, say), with up to ``maxInFlight``
    /// requests in flight, and returns once all have completed. Writes adjacent both in memory and
    /// on the export merge into one request. ``exportBase`` does not apply: the offsets are the
    /// export's own.
    /// - Throws: as ``write(from:extents:)``.
    package func write(_ writes: some Sequence<NBDWrite>) throws(NBDError) -> Summary {
        let handle = export.handle
        let uri = export.uri
        let flags: UInt32 = fua ? UInt32(LIBNBD_CMD_FLAG_FUA) : 0
        let maxRequest = maxRequestBytes
        let maxInFlight = maxInFlight
        let stallMilliseconds = NBDExport.pollMilliseconds(stallTimeout)
        return try export.exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) -> Summary in
            try slots.checkUsable()
            slots.prepare(count: maxInFlight)
            let tally = slots.tally
            var callback = nbd_completion_callback(
                callback: { NBDCompletionSlots.completed($0, $1) }, user_data: nil, free: nil)
            var summary = Summary(requests: 0, bytes: 0, peakInFlight: 0)
            var refused: NBDError?

            /// Waits for the state machine to make progress (a reply read, a request sent): nbd_poll
            /// returns 1 then, 0 when the stall timeout passed with none, -1 on error.
            func poll() throws(NBDError) {
                switch nbd_poll(handle, stallMilliseconds) {
                case -1:
                    let error = NBDError.last("wait for writes to \(uri)")
                    // A signal handled on this thread interrupted poll(2): nothing failed.
                    guard error.errno == EINTR else { throw error }
                case 0:
                    throw NBDError(
                        operation: "wait for writes to \(uri)",
                        message:
                            "no progress for \(stallMilliseconds) ms with \(tally.pointee.inFlight) requests in flight",
                        errno: ETIMEDOUT)
                default: return
                }
            }
            /// Queues one request, waiting for a free slot; false once anything has failed.
            func submit(_ write: NBDWrite) throws(NBDError) -> Bool {
                var slot = slots.take(offset: write.offset, length: write.length)
                while slot == nil {
                    try poll()
                    slot = slots.take(offset: write.offset, length: write.length)
                }
                guard let slot, tally.pointee.failures == 0 else {
                    if let slot { slots.giveBack(slot) }
                    return false
                }
                callback.user_data = UnsafeMutableRawPointer(slot)
                let source = UnsafeMutableRawPointer(mutating: write.source)
                guard nbd_aio_pwrite(handle, source, write.length, write.offset, callback, flags) != -1 else {
                    // Not queued: libnbd will not run the callback, so the slot is ours again.
                    refused = NBDError.last(
                        "write \(write.length) bytes at 0x\(String(write.offset, radix: 16)) of \(uri)")
                    slots.giveBack(slot)
                    return false
                }
                summary.requests += 1
                summary.bytes += write.length
                return true
            }

            do throws(NBDError) {
                // Merge writes adjacent in memory and on the export; a run reaching the request
                // limit is sent.
                var run: NBDWrite?
                submitting: for write in writes where write.length > 0 {
                    if let current = run, current.source + current.length == write.source,
                        current.offset + UInt64(current.length) == write.offset
                    {
                        run = NBDWrite(
                            source: current.source, length: current.length + write.length, offset: current.offset)
                    } else {
                        if let current = run, !(try submit(current)) {
                            run = nil
                            break submitting
                        }
                        run = write
                    }
                    while let current = run, current.length >= maxRequest {
                        guard try submit(NBDWrite(source: current.source, length: maxRequest, offset: current.offset))
                        else {
                            run = nil
                            break submitting
                        }
                        run =
                            current.length > maxRequest
                            ? NBDWrite(
                                source: current.source + maxRequest, length: current.length - maxRequest,
                                offset: current.offset + UInt64(maxRequest)) : nil
                    }
                }
                if let current = run { _ = try submit(current) }
                while tally.pointee.inFlight > 0 { try poll() }
            } catch {
                // The connection failed with requests in flight: libnbd may still complete them into
                // the slots, so they cannot be reused; the export is done.
                if tally.pointee.inFlight > 0 { slots.broken = error }
                throw tally.pointee.failures > 0 ? Self.firstFailure(tally.pointee, uri: uri) : error
            }
            if tally.pointee.failures > 0 { throw Self.firstFailure(tally.pointee, uri: uri) }
            if let refused { throw refused }
            summary.peakInFlight = tally.pointee.peakInFlight
            return summary
        }
    }

    /// Makes the completed writes durable on the server; see ``NBDExport/flush()``, bounded by the
    /// export's stall timeout, not the writer's.
    package func flush() throws(NBDError) {
        try export.flush()
    }

    /// The error for the first request the server failed, with how many others failed too.
    private static func firstFailure(_ tally: NBDPipelineTally, uri: String) -> NBDError {
        let others = tally.failures > 1 ? " (and \(tally.failures - 1) more requests failed)" : ""
        return NBDError.request(
            "write \(tally.firstLength) bytes at 0x\(String(tally.firstOffset, radix: 16)) of \(uri)\(others)",
            errno: tally.firstErrno)
    }
}
