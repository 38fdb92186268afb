import Foundation
import MirrorReplication
import Testing

@Suite("The export's file on the backup host: what is written is where it was asked to go")
struct FileExportDeviceTests {
    @Test(
        "extents that follow one another in the file, from scattered sources, land byte for byte; gaps are kept",
        arguments: [false, true])
    func runsOfExtents(mapped: Bool) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-file-\(getpid())-\(mapped)")
            .path
        defer { unlink(path) }
        let frame = 4_096
        let frames = 300
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: frames * frame)))
        // Mapped (the standby's way), the bytes must reach the file itself, as another reader
        // of it (FileManager below, the takeover, nbd-server) sees it.
        let device = try FileExportDevice(path: path, mapped: mapped)
        #expect((device.mappedBytes != nil) == mapped)
        // Sources in a scrambled order; destinations: runs of 1, 2, 70 (longer than one pwritev
        // takes) and 150 consecutive frames, with gaps between them.
        let runs: [Range<Int>] = [3..<4, 10..<12, 20..<90, 100..<250]
        let destinations = runs.flatMap { $0 }
        var random = SplitMix(seed: 5)
        let order = destinations.indices.shuffled(using: &random)
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: destinations.count * frame, alignment: 4_096)
        defer { source.deallocate() }
        for i in 0..<source.count { source[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 12) }
        let extents = destinations.enumerated().map { index, destination in
            ExportExtent(
                source: UnsafeRawPointer(source.baseAddress! + order[index] * frame), length: frame,
                offset: UInt64(destination * frame))
        }
        try extents.withUnsafeBufferPointer { try device.write($0, durable: true) }
        let written = try #require(FileManager.default.contents(atPath: path))
        var wrong: [Int] = []
        for f in 0..<frames {
            let bytes = written[f * frame..<(f + 1) * frame]
            if let index = destinations.firstIndex(of: f) {
                let expected = UnsafeRawBufferPointer(
                    rebasing: source[order[index] * frame..<(order[index] + 1) * frame])
                if !bytes.elementsEqual(expected) { wrong.append(f) }
            } else if bytes.contains(where: { $0 != 0 }) {
                wrong.append(f)
            }
        }
        #expect(wrong.isEmpty, "frames \(wrong) hold the wrong bytes")
    }
}

extension FileExportDeviceTests {
    @Test("mapped: a read sees what another writer put in the file since; a range past the end is refused, untouched")
    func mappedCoherentAndBounded() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-map-\(getpid())").path
        defer { unlink(path) }
        let frame = 4_096
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 8 * frame)))
        let mapped = try FileExportDevice(path: path, mapped: true)
        // The standby's write first (the page then its mapping's), then nbd-server's side, through
        // the file, over it: a private mapping would keep the standby's copy and fail here.
        try mapped.write(Array(repeating: 0x5A, count: frame), at: UInt64(5 * frame), durable: false)
        let other = try FileExportDevice(path: path)
        let bytes = (0..<frame).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        try other.write(bytes, at: UInt64(5 * frame), durable: false)
        let seen = UnsafeMutableRawBufferPointer.allocate(byteCount: frame, alignment: 4_096)
        defer { seen.deallocate() }
        try mapped.read(into: seen, at: UInt64(5 * frame))
        #expect(Array(seen) == bytes)

        // The last frame exactly is inside; a byte past the end is refused by name, not a
        // SIGBUS, and nothing of the write lands.
        try mapped.read(into: seen, at: UInt64(7 * frame))
        #expect(throws: ExportError.self) { try mapped.read(into: seen, at: UInt64(7 * frame + 1)) }
        let error = #expect(throws: ExportError.self) {
            try mapped.write(Array(repeating: 0xEE, count: 2 * frame), at: UInt64(7 * frame), durable: false)
        }
        #expect(
            error.map { "\($0)" }?.contains("end of file (32768 bytes, as mapped)") == true,
            "\(String(describing: error))")
        let file = try #require(FileManager.default.contents(atPath: path))
        #expect(file.count == 8 * frame)
        #expect(!file[(7 * frame)...].contains(where: { $0 != 0 }), "the last frame, refused, is still zeros")
    }

    @Test("after a short write the run resumes at the first byte not written, empty vectors passed over")
    func advanceAfterShortWrite() {
        let base = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { base.deallocate() }
        // Vectors of 0, 10, 0, 20 and 5 bytes.
        let lengths = [0, 10, 0, 20, 5]
        var starts: [Int] = []
        var at = 0
        for length in lengths {
            starts.append(at)
            at += length
        }
        func vectors() -> UnsafeMutableBufferPointer<iovec> {
            let vectors = UnsafeMutableBufferPointer<iovec>.allocate(capacity: lengths.count)
            for (i, length) in lengths.enumerated() { vectors[i] = iovec(iov_base: base + starts[i], iov_len: length) }
            return vectors
        }
        /// The first vector left and where its bytes now begin, after `written` bytes.
        func after(_ written: Int) -> (first: Int, offset: Int, length: Int) {
            let v = vectors()
            defer { v.deallocate() }
            let first = FileExportDevice.advance(v, from: 0, by: written)
            guard first < v.count else { return (first, -1, 0) }
            return (first, v[first].iov_base! - base, v[first].iov_len)
        }
        #expect(after(0) == (1, 0, 10), "nothing written: the empty first vector passed over")
        #expect(after(4) == (1, 4, 6), "inside the second vector")
        #expect(after(10) == (3, 10, 20), "on the boundary: the empty vector after it passed over too")
        #expect(after(29) == (3, 29, 1), "one byte left of the fourth")
        #expect(after(35) == (5, -1, 0), "all written")
        // A run of empty vectors only: nothing to write.
        let empty = UnsafeMutableBufferPointer<iovec>.allocate(capacity: 2)
        defer { empty.deallocate() }
        empty[0] = iovec(iov_base: base, iov_len: 0)
        empty[1] = iovec(iov_base: base, iov_len: 0)
        #expect(FileExportDevice.advance(empty, from: 0, by: 0) == 2)
    }
}
