import Foundation
import MirrorReplication
import Testing

@Suite("The export's file on the backup host: what is written is where it was asked to go")
struct FileExportDeviceTests {
    @Test("extents that follow one another in the file, from scattered sources, land byte for byte; gaps are kept")
    func runsOfExtents() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-file-\(getpid())").path
        defer { unlink(path) }
        let frame = 4_096
        let frames = 300
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: frames * frame)))
        let device = try FileExportDevice(path: path)
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
