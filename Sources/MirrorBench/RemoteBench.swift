import Foundation
import MirrorCore
import MirrorEmulation
import MirrorNBD
import MirrorReplication
import Synchronization

/// `mirrord-bench --only remote`: the spare on another host, over NBD, against the link's own speed
/// measured in the same run: `nbdcopy` (libnbd's copy tool) writing the same bytes to the same
/// export. The full copy through the epoch journal, epoch commits of several sizes against the
/// time the link takes for their bytes, and the takeover's replay of the last epoch.
enum RemoteBench {
    /// An export that is not given is served by a local `nbd-server` over a Unix socket, its file
    /// in memory (`/dev/shm`), as the spare host's export would be: the spare is memory, and a
    /// flush then costs no disk write.
    static let localName = "a local nbd-server over nbd+unix, its file in /dev/shm"

    /// Rounds of the full copy and of `nbdcopy`, taken in turn; the medians are reported.
    static let copyRounds = 3

    /// Measures memory of `bytes` against the export at `uri` (nil: a local `nbd-server`), epochs
    /// of each of `epochFrames` frames, `commits` of each.
    static func measure(uri given: String?, bytes: Int, epochFrames: [Int], commits: Int) throws -> RemoteResult {
        let frameSize = MemoryGeometry.standardFrameSize
        let frameCount = bytes / frameSize
        let layout = ExportLayout(
            frameSize: frameSize, frameCount: frameCount, journalFrames: min(frameCount, epochFrames.max() ?? 1))
        let server =
            given == nil
            ? try NBDLocalServer(size: Int(layout.requiredBytes), parent: URL(fileURLWithPath: "/dev/shm")) : nil
        let uri = given ?? server!.uri
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: frameSize)
        defer { memory.deallocate() }
        var random = WyRandom(seed: 17)
        for word in 0..<bytes / 8 { memory.storeBytes(of: random.next(), toByteOffset: word * 8, as: UInt64.self) }

        // The link's own speed: nbdcopy of the same bytes, from a file, to the same export.
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-bench-\(getpid()).img")
        defer { try? FileManager.default.removeItem(at: source) }
        try Data(UnsafeRawBufferPointer(memory)).write(to: source)
        let device = try NBDExportDevice(uri: uri)
        let owner = ExportOwner(
            machineID: String(repeating: "0", count: 32), hostname: "mirrord-bench", pid: getpid(), since: 0)
        let zeros = [UInt8](repeating: 0, count: 2 * ExportLayout.blockSize)
        var nbdcopy: [UInt64] = []
        var ours: [UInt64] = []
        for _ in 0..<copyRounds {
            let start = MonotonicClock.nanoseconds()
            let status = try NBDLocalServer.spawnAndWait(
                ["nbdcopy", "--flush", source.path, uri], log: "/dev/null")
            guard status == 0 else { throw RemoteBenchError("nbdcopy to \(uri) exited with status \(status)") }
            nbdcopy.append(MonotonicClock.nanoseconds() &- start)
            // nbdcopy wrote over the header slots: give the export back to mirrord.
            try device.write(zeros, at: 0, durable: true)
            let journal = try EpochJournal(device: device, name: uri, layout: layout, owner: owner)
            try journal.beginSync()
            let begin = MonotonicClock.nanoseconds()
            try journal.writeInPlace(frames: 0..<frameCount, of: UnsafeRawPointer(memory.baseAddress!))
            try journal.flush()
            ours.append(MonotonicClock.nanoseconds() &- begin)
        }
        let linkNanoseconds = median(nbdcopy)
        let copyNanoseconds = median(ours)
        let bytesPerNanosecond = Double(bytes) / Double(linkNanoseconds)

        // Epoch commits: random frames staged as a pause would, committed in turn; the primary putting
        // them in place itself, then (on a local server's file) a standby doing it on the spare host.
        let staged = UnsafeMutableRawBufferPointer.allocate(
            byteCount: layout.journalFrames * frameSize, alignment: frameSize)
        defer { staged.deallocate() }
        var rows: [RemoteResult.Epochs] = []
        var journal: EpochJournal!
        var epoch: UInt64 = 0
        var lastFrames = 0
        let appliers: [(String, EpochJournal.Applier)] =
            [("primary", .primary)]
            + (server == nil ? [] : [("standby", .standby(patience: 100_000, pause: { usleep(50) }))])
        for (applierName, applier) in appliers {
            // The standby first: a sync with one begins only once it acknowledges it.
            let standby = try server.map { try StandbyLoop(path: $0.file.path) }
            defer { standby?.stop() }
            journal = try EpochJournal(device: device, name: uri, layout: layout, owner: owner, applier: applier)
            try journal.beginSync()
            try journal.writeInPlace(frames: 0..<frameCount, of: UnsafeRawPointer(memory.baseAddress!))
            epoch = 0
            for frames in epochFrames {
                var latencies: [UInt64] = []
                for _ in 0..<commits {
                    var chosen = Set<UInt32>()
                    while chosen.count < frames { chosen.insert(UInt32(scaled(random.next(), frameCount))) }
                    let list = chosen.sorted()
                    for (i, frame) in list.enumerated() {
                        (staged.baseAddress! + i * frameSize).copyMemory(
                            from: memory.baseAddress! + Int(frame) * frameSize, byteCount: frameSize)
                    }
                    epoch += 1
                    let start = MonotonicClock.nanoseconds()
                    try list.withUnsafeBufferPointer { (l) throws(ExportError) in
                        try journal.commit(epoch: epoch, frameList: l, staged: UnsafeRawPointer(staged.baseAddress!))
                    }
                    latencies.append(MonotonicClock.nanoseconds() &- start)
                }
                latencies.sort()
                let floor = UInt64(Double(frames * frameSize) / bytesPerNanosecond)
                rows.append(
                    RemoteResult.Epochs(
                        applier: applierName, frames: frames, commits: commits,
                        p50Microseconds: latencies[latencies.count / 2] / 1_000,
                        p99Microseconds: latencies[min(latencies.count - 1, latencies.count * 99 / 100)] / 1_000,
                        linkMicroseconds: floor / 1_000))
                lastFrames = frames
            }
            try journal.flush()
        }

        // The takeover: the last epoch replayed, on the file behind a local server, else over the link.
        let start = MonotonicClock.nanoseconds()
        let outcome: ExportRecovery.Outcome
        if let server {
            outcome = try ExportRecovery.recover(try FileExportDevice(path: server.file.path), name: server.file.path)
        } else {
            outcome = try ExportRecovery.recover(device, name: uri)
        }
        let takeover = MonotonicClock.nanoseconds() &- start
        // With a local server the last run is the standby's, which may have put the last epoch in
        // place before it stopped: then nothing is left to replay (0 frames), else the whole epoch.
        guard outcome.epoch == epoch, outcome.framesReplayed == 0 || outcome.framesReplayed >= lastFrames else {
            throw RemoteBenchError(
                "the takeover found epoch \(outcome.epoch) and replayed \(outcome.framesReplayed) frames; expected "
                    + "epoch \(epoch) and none or at least \(lastFrames)")
        }
        return RemoteResult(
            export: given ?? localName, memoryBytes: bytes, nbdcopyMicroseconds: linkNanoseconds / 1_000,
            fullCopyMicroseconds: copyNanoseconds / 1_000, epochs: rows, takeoverMicroseconds: takeover / 1_000,
            takeoverFrames: outcome.framesReplayed, takeoverOverLink: server == nil)
    }

    private static func median(_ values: [UInt64]) -> UInt64 { values.sorted()[values.count / 2] }

    /// A standby on the spare host's file, on a thread of its own, applying epochs as they commit.
    final class StandbyLoop: Sendable {
        private let thread: WorkerThread
        private let running = Running()

        /// Whether the loop goes on: shared with its thread.
        private final class Running: Sendable {
            let value = Atomic<Bool>(true)
        }

        /// Starts applying on the export file at `path`.
        init(path: String) throws {
            let standby = ExportStandby(device: try FileExportDevice(path: path), name: path)
            let running = self.running
            thread = try WorkerThread(name: "mirrord-standby") {
                while running.value.load(ordering: .acquiring) {
                    _ = try? standby.applyCommitted()
                    usleep(50)
                }
            }
        }

        /// Stops applying, at the end of the current pass, and waits for it.
        func stop() {
            running.value.store(false, ordering: .releasing)
            thread.join()
        }
    }
}

/// Why the remote section could not measure.
struct RemoteBenchError: Error, CustomStringConvertible {
    /// What went wrong.
    var description: String

    /// An error saying `description`.
    init(_ description: String) { self.description = description }
}

/// The remote section's figures: every time beside the link's own for the same bytes.
struct RemoteResult: Encodable {
    /// Epoch commits of one size.
    struct Epochs: Encodable {
        /// Who put the epochs in place: `primary` (over the link) or `standby` (on the spare host).
        let applier: String
        /// Frames in each epoch.
        let frames: Int
        /// Epochs committed.
        let commits: Int
        /// The median and the 99th percentile of a commit, microseconds.
        let p50Microseconds: UInt64
        let p99Microseconds: UInt64
        /// What the link takes for the epoch's bytes at `nbdcopy`'s speed, microseconds.
        let linkMicroseconds: UInt64
        /// The median commit against the link's time for its bytes (journal, flush, record, in place).
        var commitRatio: Double { Double(p50Microseconds) / Double(max(1, linkMicroseconds)) }

        enum CodingKeys: String, CodingKey {
            case applier, frames, commits
            case p50Microseconds = "p50_us"
            case p99Microseconds = "p99_us"
            case linkMicroseconds = "link_us"
        }
    }

    /// The export measured.
    let export: String
    /// Bytes of memory copied.
    let memoryBytes: Int
    /// `nbdcopy --flush` of the same bytes to the same export (median), microseconds.
    let nbdcopyMicroseconds: UInt64
    /// mirrord's full copy through the epoch journal, with its flush (median), microseconds.
    let fullCopyMicroseconds: UInt64
    /// Epoch commits by size.
    let epochs: [Epochs]
    /// The takeover's replay of the last epoch, its checksum check included, microseconds.
    let takeoverMicroseconds: UInt64
    /// Frames it replayed.
    let takeoverFrames: Int
    /// Whether the takeover went over the link (an export given) rather than the file.
    let takeoverOverLink: Bool
    /// Epochs of a running machine and the takeover of what they left (``ReplicationBench``),
    /// once for each applier, on the same export.
    var replications: [ReplicationResult] = []

    /// nbdcopy's time over ours: at least 0.8 is the target.
    var fullCopyRatio: Double { Double(nbdcopyMicroseconds) / Double(max(1, fullCopyMicroseconds)) }
    /// `nbdcopy`'s speed, MB/s.
    var nbdcopyMBps: Double { Double(memoryBytes) / Double(max(1, nbdcopyMicroseconds)) }

    enum CodingKeys: String, CodingKey {
        case export, epochs, replications
        case memoryBytes = "memory_bytes"
        case nbdcopyMicroseconds = "nbdcopy_us"
        case fullCopyMicroseconds = "full_copy_us"
        case takeoverMicroseconds = "takeover_us"
        case takeoverFrames = "takeover_frames"
        case takeoverOverLink = "takeover_over_link"
        case fullCopyRatio = "full_copy_ratio"
    }

    /// Encodes the figures and the ratios.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(export, forKey: .export)
        try c.encode(memoryBytes, forKey: .memoryBytes)
        try c.encode(nbdcopyMicroseconds, forKey: .nbdcopyMicroseconds)
        try c.encode(fullCopyMicroseconds, forKey: .fullCopyMicroseconds)
        try c.encode(fullCopyRatio, forKey: .fullCopyRatio)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(takeoverMicroseconds, forKey: .takeoverMicroseconds)
        try c.encode(takeoverFrames, forKey: .takeoverFrames)
        try c.encode(takeoverOverLink, forKey: .takeoverOverLink)
        try c.encode(replications, forKey: .replications)
    }

    /// The section's lines of the table.
    var lines: [String] {
        var out = [
            "remote (\(export), \(ByteCount.format(memoryBytes)))",
            "  full copy: nbdcopy \(nbdcopyMicroseconds / 1_000) ms, mirrord \(fullCopyMicroseconds / 1_000) ms, "
                + "full_copy_ratio \(String(format: "%.2f", fullCopyRatio)) (≥ 0.80)",
            "  applier   epoch frames   commits   p50 µs   p99 µs   link µs   commit_ratio",
        ]
        for e in epochs {
            out.append(
                "  \(e.applier.padding(toLength: 10, withPad: " ", startingAt: 0))"
                    + "\(String(e.frames).padding(toLength: 15, withPad: " ", startingAt: 0))"
                    + "\(String(e.commits).padding(toLength: 10, withPad: " ", startingAt: 0))"
                    + "\(String(e.p50Microseconds).padding(toLength: 9, withPad: " ", startingAt: 0))"
                    + "\(String(e.p99Microseconds).padding(toLength: 9, withPad: " ", startingAt: 0))"
                    + "\(String(e.linkMicroseconds).padding(toLength: 10, withPad: " ", startingAt: 0))"
                    + String(format: "%.2f", e.commitRatio))
        }
        out.append(
            "  takeover: \(takeoverMicroseconds) µs for \(takeoverFrames) frames replayed"
                + "\(takeoverOverLink ? " over the link" : " from the file") (≤ 100 ms)")
        for replication in replications { out += replication.lines }
        if let primary = replications.first(where: { $0.applier == "primary" }),
            let standby = replications.first(where: { $0.applier == "standby" })
        {
            func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
            out.append(
                "  standby against primary (same run, same export): epochs/s \(f(standby.epochsPerSecond, 1)) vs "
                    + "\(f(primary.epochsPerSecond, 1)), commit p50 \(standby.commitP50) vs \(primary.commitP50) µs, "
                    + "lag p99 \(f(standby.lagP99, 2)) vs \(f(primary.lagP99, 2)) epochs, pause p99 "
                    + "\(standby.pauseP99) vs \(primary.pauseP99) µs, slowdown \(f(standby.slowdown * 100, 1)) vs "
                    + "\(f(primary.slowdown * 100, 1)) %")
        }
        return out
    }
}
