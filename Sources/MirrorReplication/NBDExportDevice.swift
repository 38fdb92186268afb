import MirrorNBD

/// An export reached over the network with libnbd (``MirrorNBD``): the primary's side of the
/// spare on another host. Batches go out with many requests in flight; a durable batch uses FUA
/// where the server offers it, else a flush after it.
package final class NBDExportDevice: ExportDevice {
    /// The connection.
    package let export: NBDExport
    package var size: UInt64 { export.size }
    private let writer: NBDPipelinedWriter
    private let durableWriter: NBDPipelinedWriter?

    /// The export at `uri` (any URI `nbd_connect_uri` reads), with up to `maxInFlight` writes in
    /// flight. Every call that waits on the server (the connect, a write, a read, a flush) fails
    /// with an I/O error once it has made no progress for `stallTimeout` (the link is gone); after
    /// such a timeout the device takes no more calls. nil waits as long as TCP does. `tls` are the
    /// credentials of an `nbds://` URI (``NBDTLS``; TLS is then required).
    package init(uri: String, tls: NBDTLS? = nil, maxInFlight: Int = 64, stallTimeout: Duration? = nil)
        throws(ExportError)
    {
        do throws(NBDError) {
            let export = try NBDExport(uri: uri, tls: tls, stallTimeout: stallTimeout)
            self.export = export
            writer = try NBDPipelinedWriter(export: export, maxInFlight: maxInFlight, stallTimeout: stallTimeout)
            durableWriter =
                export.canFUA
                ? try NBDPipelinedWriter(
                    export: export, maxInFlight: maxInFlight, fua: true, stallTimeout: stallTimeout)
                : nil
        } catch {
            throw ExportError(.io, error.operation, error.message)
        }
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        do throws(NBDError) {
            try export.read(into: buffer, offset: offset)
        } catch {
            throw ExportError(.io, error.operation, error.message)
        }
    }

    /// Reads with many requests in flight (``NBDExport/readPipelined(into:offset:maxInFlight:requestBytes:)``).
    package func readBulk(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        do throws(NBDError) {
            try export.readPipelined(into: buffer, offset: offset)
        } catch {
            throw ExportError(.io, error.operation, error.message)
        }
    }

    package func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError) {
        let writes = extents.lazy.map { NBDWrite(source: $0.source, length: $0.length, offset: $0.offset) }
        do throws(NBDError) {
            if durable, let durableWriter {
                _ = try durableWriter.write(writes)
            } else {
                _ = try writer.write(writes)
                if durable { try export.flush() }
            }
        } catch {
            throw ExportError(.io, error.operation, error.message)
        }
    }

    package func flush() throws(ExportError) {
        do throws(NBDError) {
            try export.flush()
        } catch {
            throw ExportError(.io, error.operation, error.message)
        }
    }
}
