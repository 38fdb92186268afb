import CNBD
import Foundation
import Synchronization
import Testing

@testable import MirrorNBD

/// Fills `count` bytes with a fast deterministic pseudo-random pattern (xorshift64*), so frames
/// differ from one another and from the zeros of a sparse file.
private func pattern(count: Int, seed: UInt64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var state = seed | 1
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in 0..<words.count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            words[i] = state &* 0x2545_F491_4F6C_DD1D
        }
    }
    return bytes
}

/// Whether `a` and `b` hold the same bytes in `range` (memcmp: a debug build compares slices
/// byte by byte, slowly).
private func same(_ a: [UInt8], _ b: [UInt8], _ range: Range<Int>) -> Bool {
    a.withUnsafeBytes { a in
        b.withUnsafeBytes { b in
            memcmp(a.baseAddress! + range.lowerBound, b.baseAddress! + range.lowerBound, range.count) == 0
        }
    }
}

/// What a call run by ``Background`` came to: the error it threw (nil when it returned; any error
/// not an ``NBDError`` wrapped in one) and how long it took.
private struct TimedOutcome: Sendable {
    var error: NBDError?
    var elapsed: Duration
}

/// A call run on a thread of its own, so that the test bounds how long it waits for it: a call
/// that hangs fails the test instead of hanging it (it runs on until the test releases what
/// blocks it).
private final class Background: Sendable {
    private let outcome = Mutex<TimedOutcome?>(nil)
    private let done = DispatchSemaphore(value: 0)

    /// Starts `call`.
    init(_ call: @escaping @Sendable () throws -> Void) {
        Thread.detachNewThread { [self] in
            let start = ContinuousClock.now
            var thrown: NBDError?
            do {
                try call()
            } catch {
                thrown = error as? NBDError ?? NBDError(operation: "call", message: "\(error)", errno: 0)
            }
            let outcome = TimedOutcome(error: thrown, elapsed: ContinuousClock.now - start)
            self.outcome.withLock { $0 = outcome }
            done.signal()
        }
    }

    /// What the call came to, or nil while it has not returned after `limit`.
    func wait(_ limit: Duration) -> TimedOutcome? {
        let (seconds, attoseconds) = limit.components
        guard done.wait(timeout: .now() + Double(seconds) + Double(attoseconds) * 1e-18) == .success else {
            return nil
        }
        done.signal()  // a later wait returns at once
        return outcome.withLock { $0 }
    }
}

/// Runs `call` on a thread of its own and waits at most `limit` for it; nil if it is still
/// running then.
private func timed(_ limit: Duration, _ call: @escaping @Sendable () throws -> Void) -> TimedOutcome? {
    Background(call).wait(limit)
}

/// A TCP listener on loopback that never accepts: the kernel completes the handshake, and the
/// client then waits for a greeting that never comes — a server host that stopped answering.
private struct SilentListener: ~Copyable {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw NBDLocalServerError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, address, &length) == 0
            }
        }
        guard listening else {
            let code = errno
            close(descriptor)
            throw NBDLocalServerError("bind, listen: errno \(code)")
        }
        self.descriptor = descriptor
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(descriptor) }
}

@Suite("NBD transport against a real nbd-server")
struct NBDTransportTests {
    let frameSize = 4096

    @Test("a pipelined read returns the export's bytes (a takeover's image); a read past the end is thrown")
    func pipelinedRead() throws {
        let size = 24 << 20
        let server = try NBDLocalServer(size: size)
        let contents = pattern(count: size, seed: 0x7461_6b65)
        try Data(contents).write(to: server.file)
        let export = try NBDExport(uri: server.uri)
        // From an odd offset, in requests of 1 MiB with 8 in flight: the tail is a short request.
        let offset = 12_288
        var read = [UInt8](repeating: 0, count: size - offset)
        try read.withUnsafeMutableBytes { buffer in
            try export.readPipelined(into: buffer, offset: UInt64(offset), maxInFlight: 8, requestBytes: 1 << 20)
        }
        #expect(same(read, Array(contents[offset...]), 0..<read.count), "the bytes read are the export's")
        var past = [UInt8](repeating: 0, count: 2 << 20)
        #expect(throws: NBDError.self) {
            try past.withUnsafeMutableBytes { buffer in
                try export.readPipelined(into: buffer, offset: UInt64(size - (1 << 20)), requestBytes: 1 << 20)
            }
        }
        // The request past the end was refused before it was sent; the ones before it completed:
        // nothing can land in the buffer later, and the export stays usable.
        try export.shutdown()
    }

    @Test("the export reports its size and what the server negotiated")
    func negotiated() throws {
        let server = try NBDLocalServer(size: 48 << 20)
        let export = try NBDExport(uri: server.uri)
        #expect(export.size == 48 << 20)
        #expect(!export.isReadOnly)
        #expect(export.canFlush)
        #expect(export.canFUA)
        #expect(export.maximumRequestBytes > 0 && export.maximumRequestBytes <= 32 << 20)
        try export.shutdown()
    }

    @Test("4,096 random frames, 64 in flight, then flush: the file holds them byte for byte")
    func pipelinedFrames() throws {
        let frames = 8192  // 32 MiB: half the frames written, at random
        let server = try NBDLocalServer(size: frames * frameSize)
        let memory = pattern(count: frames * frameSize, seed: 0x6d69_7272_6f72_64)
        var generator = SystemRandomNumberGenerator()
        let shuffled = Array(0..<frames).shuffled(using: &generator)
        let control = shuffled[0]  // deliberately not written
        let written = Array(shuffled[1...4096])

        let export = try NBDExport(uri: server.uri)
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 64)
        let summary = try memory.withUnsafeBytes { raw in
            try writer.write(from: raw, frames: written, frameSize: frameSize)
        }
        try writer.flush()
        #expect(summary.bytes == 4096 * frameSize)
        #expect(summary.requests <= 4096)
        #expect(summary.peakInFlight == 64, "the writer keeps 64 requests in flight")

        let file = try server.fileBytes()
        #expect(file.count == memory.count)
        var mismatched: [Int] = []
        for frame in written {
            let range = frame * frameSize..<(frame + 1) * frameSize
            if !same(file, memory, range) { mismatched.append(frame) }
        }
        #expect(mismatched.isEmpty, "frames that differ in the file: \(mismatched.prefix(8))")
        // Negative control: the comparison can fail — the frame not written still differs.
        let controlRange = control * frameSize..<(control + 1) * frameSize
        #expect(file[controlRange] != memory[controlRange])
        #expect(file[controlRange].allSatisfy { $0 == 0 })

        // The same bytes through NBD, the read takeover will use.
        let frame = written[7]
        #expect(
            try export.read(offset: UInt64(frame * frameSize), count: frameSize)[...]
                == memory[frame * frameSize..<(frame + 1) * frameSize])
    }

    @Test("adjacent extents merge, long ones split, FUA writes read back whole")
    func mergeSplitFUA() throws {
        let size = 8 << 20
        let server = try NBDLocalServer(size: size)
        let memory = pattern(count: size, seed: 42)
        let export = try NBDExport(uri: server.uri)
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 4, maxRequestBytes: 64 << 10, fua: true)
        let extents = [
            NBDExtent(offset: 0, length: 4096), NBDExtent(offset: 4096, length: 4096),  // one request
            NBDExtent(offset: 1 << 20, length: 1 << 20),  // 16 requests of 64 KiB
            NBDExtent(offset: 3 << 20, length: 100),  // an unaligned tail
        ]
        let summary = try memory.withUnsafeBytes { try writer.write(from: $0, extents: extents) }
        #expect(summary.requests == 1 + 16 + 1)
        #expect(summary.bytes == 8192 + (1 << 20) + 100)
        for extent in extents {
            let back = try export.read(offset: UInt64(extent.offset), count: extent.length)
            #expect(back[...] == memory[extent.offset..<extent.offset + extent.length])
        }
        // The whole-range read crosses the request limit.
        let whole = try export.read(offset: 0, count: size)
        #expect(whole[(1 << 20)..<(2 << 20)] == memory[(1 << 20)..<(2 << 20)])
        #expect(whole[(2 << 20)..<(3 << 20)].allSatisfy { $0 == 0 })
    }

    @Test("a request the server fails is thrown with its range, after the others complete")
    func serverFailureSurfaces() throws {
        let size = 1 << 20
        let server = try NBDLocalServer(size: size)
        let memory = pattern(count: 2 * size, seed: 7)
        let export = try NBDExport(uri: server.uri)
        // Let the out-of-bounds request reach the server instead of libnbd refusing it locally.
        #expect(nbd_set_strict_mode(export.handle, 0) == 0)
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 16, maxRequestBytes: 4096)
        let frames = Array(200..<256) + [300] + Array(100..<140)  // frame 300 lies past the end
        let error = #expect(throws: NBDError.self) {
            try memory.withUnsafeBytes { try writer.write(from: $0, frames: frames, frameSize: 4096) }
        }
        #expect(error?.description.hasPrefix("write 4096 bytes at 0x12c000 of \(server.uri)") == true)
        #expect(error?.errno != 0)
        // Every other request still completed: the frames before and after the failure are there.
        let file = try server.fileBytes()
        #expect(file[200 * 4096..<256 * 4096] == memory[200 * 4096..<256 * 4096])
        // Submission stops at the failure, but the export stays usable.
        _ = try memory.withUnsafeBytes { try writer.write(from: $0, frames: [5], frameSize: 4096) }
        #expect(try export.read(offset: 5 * 4096, count: 4096)[...] == memory[5 * 4096..<6 * 4096])
    }

    @Test("a request libnbd refuses to queue is thrown, not lost")
    func refusedRequestSurfaces() throws {
        let server = try NBDLocalServer(size: 1 << 20)
        let memory = pattern(count: 2 << 20, seed: 9)
        let export = try NBDExport(uri: server.uri)
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 8, maxRequestBytes: 4096)
        let error = #expect(throws: NBDError.self) {
            try memory.withUnsafeBytes { try writer.write(from: $0, frames: [1, 3, 256, 5], frameSize: 4096) }
        }
        #expect(error?.description.hasPrefix("write 4096 bytes at 0x100000 of \(server.uri):") == true)
    }

    @Test("four connections (multi-conn) write 4,096 random frames; the file holds them, a frame left out differs")
    func multiConnection() throws {
        let frames = 8192
        let server = try NBDLocalServer(size: frames * frameSize)
        let memory = pattern(count: frames * frameSize, seed: 0x6d63)
        var generator = SystemRandomNumberGenerator()
        let shuffled = Array(0..<frames).shuffled(using: &generator)
        let control = shuffled[0]
        let written = shuffled[1...4096].sorted()
        let writer = try NBDMultiConnectionWriter(uri: server.uri, connections: 4, maxInFlight: 16)
        #expect(writer.connections == 4, "nbd-server 3.24 advertises multi-conn")
        let summary = try memory.withUnsafeBytes { try writer.write(from: $0, frames: written, frameSize: frameSize) }
        try writer.flush()
        #expect(summary.bytes == 4096 * frameSize)
        let file = try server.fileBytes()
        let mismatched = written.filter { !same(file, memory, $0 * frameSize..<($0 + 1) * frameSize) }
        #expect(mismatched.isEmpty, "frames that differ in the file: \(mismatched.prefix(8))")
        #expect(!same(file, memory, control * frameSize..<(control + 1) * frameSize))
    }

    @Test("a copy splits into contiguous shares of about equal bytes")
    func shares() {
        let extents = [NBDExtent(offset: 0, length: 10), NBDExtent(offset: 20, length: 2)]
        #expect(
            NBDMultiConnectionWriter.split(extents, into: 3) == [
                [NBDExtent(offset: 0, length: 4)], [NBDExtent(offset: 4, length: 4)],
                [NBDExtent(offset: 8, length: 2), NBDExtent(offset: 20, length: 2)],
            ])
        #expect(NBDMultiConnectionWriter.split(extents, into: 1) == [extents])
        #expect(NBDMultiConnectionWriter.split([NBDExtent(offset: 0, length: 2)], into: 4).count == 2)
        #expect(NBDMultiConnectionWriter.split([], into: 4) == [[]])
    }

    @Test("a stalled server fails the write after the stall timeout, and the export is then done")
    func stallTimesOut() throws {
        let server = try NBDLocalServer(size: 16 << 20)
        let memory = pattern(count: 16 << 20, seed: 11)
        let export = try NBDExport(uri: server.uri)
        let writer = try NBDPipelinedWriter(export: export, maxInFlight: 32, stallTimeout: .milliseconds(200))
        // With the server running, waits that make progress never count as a stall.
        let summary = try memory.withUnsafeBytes {
            try writer.write(from: $0, extents: [NBDExtent(offset: 0, length: 16 << 20)])
        }
        #expect(summary.bytes == 16 << 20)
        // Stop the server and the child serving this connection (they share its process group).
        try server.signalGroup(SIGSTOP)
        defer { try? server.signalGroup(SIGCONT) }
        let error = #expect(throws: NBDError.self) {
            try memory.withUnsafeBytes { try writer.write(from: $0, extents: [NBDExtent(offset: 0, length: 16 << 20)]) }
        }
        #expect(error?.errno == ETIMEDOUT)
        #expect(error?.message.hasPrefix("no progress for 200 ms with ") == true)
        // Requests are still in flight on that connection: no further operation may use it.
        let after = #expect(throws: NBDError.self) { try export.read(offset: 0, count: 4096) }
        #expect(after == error)
    }

    @Test("a stalled server fails a flush, a read and a connect after the stall timeout; without one, the read waits")
    func stalledFlushReadConnect() throws {
        let server = try NBDLocalServer(size: 1 << 20)
        let uri = server.uri
        let memory = pattern(count: 4096, seed: 13)
        let timeout = Duration.milliseconds(200)
        let flushed = try NBDExport(uri: server.uri, stallTimeout: timeout)
        let reader = try NBDExport(uri: server.uri, stallTimeout: timeout)
        let patient = try NBDExport(uri: server.uri)
        #expect(flushed.stallTimeout == timeout && patient.stallTimeout == nil)
        // With the server running, waits that make progress never count as a stall.
        _ = try memory.withUnsafeBytes {
            try NBDPipelinedWriter(export: flushed).write(from: $0, extents: [NBDExtent(offset: 0, length: 4096)])
        }
        try flushed.flush()
        #expect(try reader.read(offset: 0, count: 4096) == memory)

        // Buffers of the caller's, which libnbd holds while a read is in flight; freed at the end
        // only (a test that stops early leaks them rather than free one a read may still fill).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
        let patientBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
        nonisolated(unsafe) let target = buffer
        nonisolated(unsafe) let patientTarget = patientBuffer

        // Stop the server and the children serving these connections (they share its group).
        try server.signalGroup(SIGSTOP)
        var stopped = true
        defer { if stopped { try? server.signalGroup(SIGCONT) } }
        // Negative control: with no timeout the same read waits through the whole stall below.
        let patientRead = Background { try patient.read(into: patientTarget, offset: 0) }

        let flush = try #require(timed(.seconds(30)) { try flushed.flush() }, "the flush still blocks after 30 s")
        #expect(flush.error?.errno == ETIMEDOUT)
        #expect(flush.error?.description == "flush \(server.uri): no answer from the server within 200 ms")
        #expect(flush.elapsed >= .milliseconds(190) && flush.elapsed < .seconds(10))

        let read = try #require(
            timed(.seconds(30)) { try reader.read(into: target, offset: 0) }, "the read still blocks after 30 s")
        #expect(read.error?.errno == ETIMEDOUT)
        #expect(
            read.error?.description
                == "read 4096 bytes at 0x0 of \(server.uri): no answer from the server within 200 ms")
        #expect(read.elapsed >= .milliseconds(190) && read.elapsed < .seconds(10))

        // A connect to the stopped server: the kernel queues it for accept, no greeting comes.
        let connect = try #require(
            timed(.seconds(30)) { _ = try NBDExport(uri: uri, stallTimeout: timeout) },
            "the connect still blocks after 30 s")
        #expect(connect.error?.errno == ETIMEDOUT)
        #expect(connect.error?.description == "connect \(server.uri): no answer from the server within 200 ms")

        // A request is still in flight on each connection: every later call is refused at once.
        let refusals: [(expected: NBDError?, call: @Sendable () throws -> Void)] = [
            (flush.error, { _ = try flushed.read(offset: 0, count: 4096) }),
            (flush.error, { try flushed.shutdown() }),
            (read.error, { try reader.flush() }),
            (read.error, { _ = try reader.read(offset: 0, count: 4096) }),
            (read.error, { try reader.shutdown() }),
        ]
        for (index, refusal) in refusals.enumerated() {
            let outcome = try #require(timed(.seconds(30), refusal.call), "refused call \(index) blocks")
            #expect(outcome.error == refusal.expected, "refused call \(index)")
            #expect(outcome.elapsed < .seconds(1), "refused call \(index)")
        }

        // The read without a timeout is still waiting, long past the timeout; the server resumes
        // and it completes with the bytes. The timed-out read's buffer, reused meanwhile, gets
        // no late reply: nothing runs that connection's state machine again.
        #expect(patientRead.wait(.zero) == nil, "the read without a timeout gave up")
        _ = buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
        try server.signalGroup(SIGCONT)
        stopped = false
        let patientOutcome = try #require(patientRead.wait(.seconds(30)), "the read without a timeout never completed")
        #expect(patientOutcome.error == nil)
        #expect(patientOutcome.elapsed > .milliseconds(400))
        #expect(memcmp(patientBuffer.baseAddress!, memory, 4096) == 0)
        #expect(throws: NBDError.self) { try reader.read(offset: 4096, count: 4096) }
        #expect(buffer.allSatisfy { $0 == 0x5a })
        buffer.deallocate()
        patientBuffer.deallocate()
    }

    @Test("a server that accepts and never speaks fails the connect after the stall timeout")
    func silentServerConnect() throws {
        let listener = try SilentListener()
        let uri = "nbd://127.0.0.1:\(listener.port)/spare"
        let connect = try #require(
            timed(.seconds(30)) { _ = try NBDExport(uri: uri, stallTimeout: .milliseconds(200)) },
            "the connect still blocks after 30 s")
        #expect(connect.error?.errno == ETIMEDOUT)
        #expect(connect.error?.description == "connect \(uri): no answer from the server within 200 ms")
        #expect(connect.elapsed >= .milliseconds(190) && connect.elapsed < .seconds(10))
    }

    @Test("a read-only export is refused for writing with a clear error")
    func readOnlyRefused() throws {
        let server = try NBDLocalServer(size: 1 << 20)
        let error = #expect(throws: NBDError.self) { try NBDExport(uri: server.readOnlyURI) }
        #expect(error?.errno == EROFS)
        #expect(error?.description == "open \(server.readOnlyURI) for writing: the server exports it read-only")
        // Opened for reading it works, and a writer on it is refused before any request.
        let export = try NBDExport(uri: server.readOnlyURI, writable: false)
        #expect(export.isReadOnly)
        #expect(try export.read(offset: 0, count: 4096).allSatisfy { $0 == 0 })
        #expect(throws: NBDError.self) { try NBDPipelinedWriter(export: export) }
    }

    @Test("a URI that does not parse is a clear error")
    func badURI() {
        for uri in ["not a uri", "http://example.com/spare", "nbd://[::1/spare"] {
            let error = #expect(throws: NBDError.self) { try NBDExport(uri: uri) }
            #expect(error?.operation == "connect \(uri)")
            #expect(error?.message.isEmpty == false)
        }
    }

    @Test("no server: the connect error names the URI and the system's reason")
    func noServer() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-no-nbd-\(UUID()).sock")
        let unix = "nbd+unix:///spare?socket=\(missing.path)"
        let error = #expect(throws: NBDError.self) { try NBDExport(uri: unix) }
        #expect(error?.errno == ENOENT)
        #expect(error?.description.hasPrefix("connect \(unix): ") == true)
        // TCP: port 1 on loopback has no listener.
        let tcp = "nbd://127.0.0.1:1/spare"
        let refused = #expect(throws: NBDError.self) { try NBDExport(uri: tcp) }
        #expect(refused?.errno == ECONNREFUSED)
        #expect(refused?.description.hasPrefix("connect \(tcp): ") == true)
    }

    @Test("an export the server does not have is a clear error")
    func unknownExport() throws {
        let server = try NBDLocalServer(size: 1 << 20)
        let uri = server.uri.replacingOccurrences(of: "/spare?", with: "/nosuch?")
        let error = #expect(throws: NBDError.self) { try NBDExport(uri: uri) }
        #expect(error?.description.hasPrefix("connect \(uri): ") == true)
    }
}
