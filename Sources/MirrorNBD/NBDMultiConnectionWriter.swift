import Dispatch
import Synchronization

/// Splits a large copy across several connections to one export, each a ``NBDPipelinedWriter``
/// driven by its own thread: what `nbdcopy` calls multi-conn.
///
/// One connection is served by one server process or thread, and its socket by one client thread;
/// several let both sides use more than one core. Only safe when the server advertises multi-conn
/// (`nbd_can_multi_conn`): then a flush on any connection covers the writes completed on all of
/// them. Against a server that does not, the writer keeps to one connection.
package struct NBDMultiConnectionWriter: Sendable {
    /// One pipelined writer per connection, the first on the connection that was opened first.
    package let writers: [NBDPipelinedWriter]

    /// How many connections the copy is split across.
    package var connections: Int { writers.count }

    /// Opens up to `connections` connections to `uri` (one only if the server does not offer
    /// multi-conn), each with a writer of the given settings (see ``NBDPipelinedWriter``);
    /// `stallTimeout` bounds the connects and flushes too; `tls` are the credentials of every
    /// connection (see ``NBDExport/init(uri:tls:writable:stallTimeout:)``).
    package init(
        uri: String, tls: NBDTLS? = nil, connections: Int, maxInFlight: Int = 64, maxRequestBytes: Int = 256 << 10,
        fua: Bool = false, exportBase: UInt64 = 0, stallTimeout: Duration? = nil
    ) throws(NBDError) {
        precondition(connections >= 1, "a writer needs a connection")
        let first = try NBDExport(uri: uri, tls: tls, stallTimeout: stallTimeout)
        var exports = [first]
        if first.canMultiConn {
            for _ in 1..<connections { exports.append(try NBDExport(uri: uri, tls: tls, stallTimeout: stallTimeout)) }
        }
        var writers: [NBDPipelinedWriter] = []
        for export in exports {
            writers.append(
                try NBDPipelinedWriter(
                    export: export, maxInFlight: maxInFlight, maxRequestBytes: maxRequestBytes, fua: fua,
                    exportBase: exportBase, stallTimeout: stallTimeout))
        }
        self.writers = writers
    }

    /// Writes the frames numbered `frames` (each `frameSize` bytes at `frame × frameSize`).
    package func write(
        from memory: UnsafeRawBufferPointer, frames: some Sequence<Int>, frameSize: Int
    ) throws(NBDError) -> NBDPipelinedWriter.Summary {
        try write(from: memory, extents: frames.map { NBDExtent(offset: $0 * frameSize, length: frameSize) })
    }

    /// Writes `extents` of `memory` split into one contiguous share of about equal bytes per
    /// connection, the shares in parallel, and returns when all have completed.
    ///
    /// The summary adds up the shares; its `peakInFlight` is the sum of each connection's peak.
    /// - Throws: the error of the first share (in extent order) that failed; the other shares
    ///   still ran to their end, so no failure is hidden by another's.
    package func write(
        from memory: UnsafeRawBufferPointer, extents: [NBDExtent]
    ) throws(NBDError) -> NBDPipelinedWriter.Summary {
        let shares = Self.split(extents, into: writers.count)
        let results = Mutex([Result<NBDPipelinedWriter.Summary, NBDError>?](repeating: nil, count: shares.count))
        // The pointer crosses to the workers; it stays valid until concurrentPerform returns.
        nonisolated(unsafe) let memory = memory
        let writers = writers
        DispatchQueue.concurrentPerform(iterations: shares.count) { index in
            let result: Result<NBDPipelinedWriter.Summary, NBDError>
            do throws(NBDError) {
                result = .success(try writers[index].write(from: memory, extents: shares[index]))
            } catch {
                result = .failure(error)
            }
            results.withLock { $0[index] = result }
        }
        var total = NBDPipelinedWriter.Summary(requests: 0, bytes: 0, peakInFlight: 0)
        for result in results.withLock({ $0 }) {
            let summary = try result!.get()
            total.requests += summary.requests
            total.bytes += summary.bytes
            total.peakInFlight += summary.peakInFlight
        }
        return total
    }

    /// Flushes every connection: with multi-conn one flush would cover all completed writes, but
    /// flushing each also checks that each connection is still alive.
    package func flush() throws(NBDError) {
        for writer in writers { try writer.flush() }
    }

    /// Splits `extents` into `count` contiguous shares of about equal bytes, cutting an extent in
    /// two where a share ends inside it; fewer shares when there are fewer bytes than shares.
    static func split(_ extents: [NBDExtent], into count: Int) -> [[NBDExtent]] {
        let total = extents.reduce(0) { $0 + $1.length }
        guard count > 1, total > 0 else { return [extents] }
        let target = (total + count - 1) / count
        var shares: [[NBDExtent]] = [[]]
        var filled = 0
        for extent in extents {
            var rest = extent
            while rest.length > 0 {
                let room = target - filled
                let take = min(room, rest.length)
                shares[shares.count - 1].append(NBDExtent(offset: rest.offset, length: take))
                filled += take
                rest = NBDExtent(offset: rest.offset + take, length: rest.length - take)
                if filled == target, shares.count < count {
                    shares.append([])
                    filled = 0
                }
            }
        }
        return shares.filter { !$0.isEmpty }
    }
}
