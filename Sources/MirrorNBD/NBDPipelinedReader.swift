import CNBD

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension NBDExport {
    /// Reads `buffer.count` bytes at `offset` with up to `maxInFlight` requests of at most
    /// `requestBytes` in flight (`nbd_aio_pread`), so that a large read (a takeover's image) keeps
    /// the link busy instead of paying a round trip a request. Returns once every request has
    /// completed.
    ///
    /// - Throws: ``NBDError`` for the first request that failed (its range), for a request libnbd
    ///   refused to queue, or for the connection failing under them.
    package func readPipelined(
        into buffer: UnsafeMutableRawBufferPointer, offset: UInt64, maxInFlight: Int = 64,
        requestBytes: Int = 1 << 20
    ) throws(NBDError) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        precondition(maxInFlight >= 1 && requestBytes >= 1, "a reader needs a request in flight and a size")
        let request = min(requestBytes, maximumRequestBytes)
        let handle = self.handle
        let uri = self.uri
        try exclusive.withLock { (slots: inout NBDCompletionSlots) throws(NBDError) in
            try slots.checkUsable()
            // The requests in flight, oldest first: their cookies and ranges.
            var inFlight: [(cookie: Int64, at: UInt64, count: Int)] = []
            inFlight.reserveCapacity(maxInFlight)
            var failure: NBDError?
            /// Retires every completed request at the head; false when the oldest is still in flight.
            func retire() {
                while let oldest = inFlight.first {
                    let done = nbd_aio_command_completed(handle, UInt64(oldest.cookie))
                    if done == 0 { return }
                    if done == -1 && failure == nil {
                        failure = NBDError.last(
                            "read \(oldest.count) bytes at 0x\(String(oldest.at, radix: 16)) of \(uri)")
                    }
                    inFlight.removeFirst()
                }
            }
            func wait() throws(NBDError) {
                if nbd_poll(handle, -1) == -1 {
                    let error = NBDError.last("wait for reads from \(uri)")
                    guard error.errno == EINTR else { throw error }
                }
            }
            var done = 0
            do throws(NBDError) {
                while done < buffer.count && failure == nil {
                    while inFlight.count >= maxInFlight {
                        try wait()
                        retire()
                    }
                    let count = min(buffer.count - done, request)
                    let at = offset + UInt64(done)
                    let cookie = nbd_aio_pread(handle, base + done, count, at, nbd_completion_callback(), 0)
                    guard cookie != -1 else {
                        // Refused before it was sent (past the end, say): none of it is in flight.
                        // The requests that are complete below, and the export stays usable.
                        failure = NBDError.last("read \(count) bytes at 0x\(String(at, radix: 16)) of \(uri)")
                        break
                    }
                    inFlight.append((cookie, at, count))
                    done += count
                }
                while !inFlight.isEmpty {
                    retire()
                    if !inFlight.isEmpty { try wait() }
                }
            } catch {
                // Requests may still complete into the buffer: the export takes no more operations.
                if !inFlight.isEmpty { slots.broken = error }
                throw error
            }
            if let failure { throw failure }
        }
    }
}
