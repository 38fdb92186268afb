import Foundation
import MirrorCore
import MirrorEmulation
import MirrorReplication
import MirrorTestSupport
import Synchronization
import Testing

/// Copy-on-write staging: a pause lists its frames, the copy follows the resume, and writers that
/// store into a frame still pending copy it first; each committed epoch must be memory exactly as
/// its pause found it.
@Suite("Copy-on-write staging: each epoch is memory as its pause found it", .serialized, .machineThreads)
struct CopyOnWriteStagingTests {
    /// 16 MiB, a small hot set written by both CPUs and DMA: the frames of each epoch are
    /// written again right after its resume.
    static func options(seed: UInt64) -> EmulatedMachine.Options {
        var options = RemoteDuplexTests.options(seed: seed)
        options.workload.hotFraction = 0.02
        options.workload.hotShare = 0.95
        options.workload.rate = .limited(bytesPerSecond: 32 << 20)
        options.dma.rate = .limited(bytesPerSecond: 128 << 20)
        return options
    }

    /// Stores the writers make after each resume before the replicator's thread copies anything:
    /// they hit the pending frames (the wait is bounded, not timed).
    static let storesAfterResume = 10_000

    /// What a run saw.
    struct Run {
        var reports: [EpochReport]
        var end: ReplicationEnd?
        /// Frames committed with contents other than the pause's, by epoch.
        var mismatches: [(epoch: UInt64, frame: Int)]
        /// Epochs whose staged frames were compared with their pause's snapshot.
        var checkedEpochs: Int
        /// Resumes seen with the machine still in its blackout.
        var resumedInBlackout: Int
        var resumes: Int
        var firstEpoch: EpochReport?
    }

    /// Syncs `machine` to an export file and replicates `epochs` epochs then a clean stop,
    /// snapshotting memory in each pause and comparing every commit's staged frames with it.
    static func run(_ machine: EmulatedMachine, epochs: UInt64) throws -> Run {
        let export = try RemoteDuplexTests.Export(for: machine)
        defer { export.remove() }
        let spare = SnapshotSpare(try export.spare())
        let resumes = Mutex<(count: Int, inBlackout: Int)>((0, 0))
        let hooks = ReplicationHooks(
            paused: { epoch in
                guard let memory = machine.activeMemory else { return }
                spare.snapshot(
                    epoch: epoch, of: memory, bytes: machine.geometry.frameSize * machine.geometry.frameCount)
            },
            resumed: { _ in
                resumes.withLock {
                    $0.count += 1
                    if machine.isInBlackout { $0.inBlackout += 1 }
                }
                // Let the writers store into the pending frames before this thread copies them.
                let start = machine.storeCount
                let deadline = MonotonicClock.nanoseconds() + 200_000_000
                while machine.storeCount < start + storesAfterResume && MonotonicClock.nanoseconds() < deadline {
                    sched_yield()
                }
            })
        let engine = DuplexEngine(
            hardware: machine, policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), spare: spare,
            replication: RemoteDuplexTests.replication, hooks: hooks)
        let summary = engine.run()
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        guard summary.outcome.isReplicating else {
            return Run(
                reports: [], end: nil, mismatches: [], checkedEpochs: 0, resumedInBlackout: 0, resumes: 0,
                firstEpoch: nil)
        }
        let reports = Mutex<[EpochReport]>([])
        let end = engine.replicate { event in
            guard case .epochCommitted(let report) = event else { return }
            reports.withLock { $0.append(report) }
            if report.epoch >= epochs { engine.stopToken.requestStop() }
        }
        let seen = resumes.withLock { $0 }
        return Run(
            reports: reports.withLock { $0 }, end: end, mismatches: spare.mismatches.withLock { $0 },
            checkedEpochs: spare.checked.load(ordering: .relaxed), resumedInBlackout: seen.inBlackout,
            resumes: seen.count, firstEpoch: summary.firstEpoch)
    }

    @Test("writers storing into pending frames right after each resume: every epoch equals memory at its pause")
    func epochsAreThePausesMemory() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 11))
        try machine.start()
        defer { machine.shutdown() }
        #expect(machine.copyOnWriteStaging != nil)
        let run = try Self.run(machine, epochs: 12)
        let end = try #require(run.end)
        #expect(end.reason == .stopped, "\(end.message)")
        #expect(
            run.mismatches.isEmpty, "frames staged with contents written after their pause: \(run.mismatches.prefix(8))"
        )
        #expect(run.checkedEpochs >= 12, "the sync's first epoch, the epochs, the clean stop's last")
        // The writers did meet pending frames and copied them themselves.
        let byWriters = run.reports.reduce(0) { $0 + $1.framesCopiedByWriters }
        #expect(byWriters > 0, "no store met a pending frame: the test did not exercise copy-on-write")
        #expect(machine.copyOnWriteStaging?.isArmed == false, "nothing pending once replication ended")
    }

    @Test("negative control: writers that skip the check make the stager stage post-pause contents")
    func writersIgnoringTheCheckAreCaught() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 12))
        try machine.start()
        defer { machine.shutdown() }
        let copyOnWrite = try #require(machine.copyOnWriteStaging)
        copyOnWrite.writersIgnore.store(true, ordering: .relaxed)
        let run = try Self.run(machine, epochs: 6)
        #expect(!run.mismatches.isEmpty, "the snapshot check missed frames written while pending")
        #expect(run.reports.allSatisfy { $0.framesCopiedByWriters == 0 })
    }

    @Test("the pause lists the frames and resumes; the copy follows the resume (the clean stop's last epoch excepted)")
    func pauseHoldsNoCopy() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 13))
        try machine.start()
        defer { machine.shutdown() }
        let run = try Self.run(machine, epochs: 8)
        let end = try #require(run.end)
        #expect(end.reason == .stopped, "\(end.message)")
        let last = try #require(run.reports.last)
        let running = run.reports.dropLast()
        #expect(running.count >= 6)
        #expect(
            running.allSatisfy { $0.frames > 0 && $0.framesCopiedInPause == 0 }, "\(running.map(\.framesCopiedInPause))"
        )
        // Each of them resumed the writers before its copy: the `resumed` hook ran outside the
        // blackout, once an epoch.
        #expect(run.resumes >= running.count && run.resumedInBlackout == 0)
        // A clean stop's last epoch copies in its blackout (the machine stays stopped), as the
        // sync's first epoch does in the final blackout.
        #expect(last.framesCopiedInPause == last.frames && last.framesCopiedByWriters == 0)
        let first = try #require(run.firstEpoch)
        #expect(first.framesCopiedInPause == first.frames)
    }
}

/// An export spare that keeps a snapshot of memory taken in each pause and compares each commit's
/// staged frames with it before committing.
final class SnapshotSpare: SpareStore {
    let inner: ExportSpare
    private let snapshots = Mutex<[UInt64: [UInt8]]>([:])
    let mismatches = Mutex<[(epoch: UInt64, frame: Int)]>([])
    let checked = Atomic<Int>(0)

    init(_ inner: ExportSpare) { self.inner = inner }

    /// Inside epoch `epoch`'s pause: keeps all of memory as it is.
    func snapshot(epoch: UInt64, of memory: UnsafeRawPointer, bytes: Int) {
        let copy = Array(UnsafeRawBufferPointer(start: memory, count: bytes))
        snapshots.withLock { $0[epoch] = copy }
    }

    var name: String { inner.name }
    var epochCapacity: Int { inner.epochCapacity }
    func reconnect() throws(SpareStoreError) -> Bool { try inner.reconnect() }
    func beginSync() throws(SpareStoreError) { try inner.beginSync() }
    func write(frames: Range<Int>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try inner.write(frames: frames, of: memory)
    }
    func write(frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try inner.write(frameList: frameList, of: memory)
    }
    func flush() throws(SpareStoreError) { try inner.flush() }
    func read(frames: Range<Int>, into buffer: UnsafeMutableRawPointer) throws(SpareStoreError) -> UInt64 {
        try inner.read(frames: frames, into: buffer)
    }

    func commit(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        if let snapshot = snapshots.withLock({ $0.removeValue(forKey: epoch) }) {
            let frameSize = 4_096
            var differing: [(epoch: UInt64, frame: Int)] = []
            snapshot.withUnsafeBytes { image in
                for (i, frame) in frameList.enumerated()
                where memcmp(staged + i * frameSize, image.baseAddress! + Int(frame) * frameSize, frameSize) != 0 {
                    differing.append((epoch, Int(frame)))
                }
            }
            if !differing.isEmpty { mismatches.withLock { $0.append(contentsOf: differing) } }
            checked.add(1, ordering: .relaxed)
        }
        try inner.commit(epoch: epoch, frameList: frameList, staged: staged)
    }
}
