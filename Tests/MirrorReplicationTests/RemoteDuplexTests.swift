import Foundation
import MirrorCore
import MirrorEmulation
import MirrorReplication
import MirrorTestSupport
import Synchronization
import Testing

/// The engine's duplex to a spare on another host, against an export file: the sync, epochs while
/// the CPUs and the DMA engine write, a clean stop, and the takeover of what it left.
@Suite("A duplex to a spare on another host: epochs, a clean stop, the takeover", .serialized, .machineThreads)
struct RemoteDuplexTests {
    static let owner = ExportOwner(machineID: String(repeating: "e", count: 32), hostname: "primary", pid: 9, since: 1)
    static let backup = ExportOwner(machineID: String(repeating: "f", count: 32), hostname: "backup", pid: 2, since: 3)

    /// 16 MiB with a hot set, CPUs and DMA both writing; staging of 4 MiB (1,024 frames).
    static func options(seed: UInt64) -> EmulatedMachine.Options {
        var options = EmulatedMachine.Options()
        options.memorySize = 16 << 20
        options.workload.pattern = .hotset
        options.workload.seed = seed
        options.workload.rate = .limited(bytesPerSecond: 48 << 20)
        options.dma.rate = .limited(bytesPerSecond: 64 << 20)
        options.dma.blockSize = 16 << 10
        options.mmu.enabled = false
        return options
    }

    static let replication = ReplicationPolicy(epochNanoseconds: 5_000_000, stagingBytes: 4 << 20)

    /// An export file for `machine`, in the temporary directory, sized for it and its journal.
    struct Export {
        let path: String
        let layout: ExportLayout

        init(for machine: EmulatedMachine) throws {
            layout = ExportLayout(
                frameSize: machine.geometry.frameSize, frameCount: machine.geometry.frameCount,
                journalFrames: RemoteDuplexTests.replication.epochCapacity(frameSize: machine.geometry.frameSize))
            path = FileManager.default.temporaryDirectory.appendingPathComponent("mirrord-remote-\(UUID()).img").path
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: layout.requiredBytes)
            try handle.close()
        }

        func spare(applier: EpochJournal.Applier = .primary) throws -> ExportSpare {
            let journal = try EpochJournal(
                device: try FileExportDevice(path: path), name: path, layout: layout, owner: RemoteDuplexTests.owner,
                applier: applier)
            let path = self.path
            return ExportSpare(journal: journal, owner: RemoteDuplexTests.owner) {
                () throws(ExportError) -> any ExportDevice in try FileExportDevice(path: path)
            }
        }

        /// Frames of the image that differ from `memory`.
        func differingFrames(from memory: UnsafeRawPointer, frameCount: Int) throws -> [Int] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return data.withUnsafeBytes { raw in
                let image = raw.baseAddress! + Int(layout.imageOffset)
                return (0..<frameCount).filter { frame in
                    memcmp(image + frame * layout.frameSize, memory + frame * layout.frameSize, layout.frameSize) != 0
                }
            }
        }

        /// Frames that differ from `memory` once the export is brought to its last committed
        /// epoch as a takeover brings it (a clean stop leaves its last epoch in the journal).
        func differingFramesTakenOver(from memory: UnsafeRawPointer, frameCount: Int) throws -> [Int] {
            _ = try ExportRecovery.recover(
                try FileExportDevice(path: path), name: path, newOwner: RemoteDuplexTests.backup)
            return try differingFrames(from: memory, frameCount: frameCount)
        }

        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Runs a sync and `epochs` epochs, then a clean stop; returns the duplex's summary and how
    /// replication ended. The machine is left stopped (in the last epoch's blackout).
    static func replicate(
        _ machine: EmulatedMachine, to spare: ExportSpare, policy: DuplexPolicy, epochs: UInt64
    ) -> (DuplexSummary, ReplicationEnd?) {
        let engine = DuplexEngine(hardware: machine, policy: policy, spare: spare, replication: replication)
        let summary = engine.run()
        guard summary.outcome.isReplicating else { return (summary, nil) }
        let reports = Mutex<[EpochReport]>([])
        let end = engine.replicate { event in
            guard case .epochCommitted(let report) = event else { return }
            reports.withLock { $0.append(report) }
            // The stop is asked for from the epochs themselves: no clock in the test.
            if report.epoch >= epochs { engine.stopToken.requestStop() }
        }
        let committed = reports.withLock { $0.map(\.epoch) }
        #expect(committed.first == 2 && committed == Array(2..<(2 + UInt64(committed.count))), "\(end.message)")
        return (summary, end)
    }

    @Test(
        "sync, 12 epochs under CPU and DMA writes, a clean stop: the export equals memory; the takeover finds the last epoch"
    )
    func cleanStop() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 3))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }

        let (summary, end) = Self.replicate(
            machine, to: try export.spare(), policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), epochs: 12)
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        #expect(summary.firstEpoch?.epoch == 1)
        #expect(summary.verify == nil, "no lockstep verify with a spare on another host")
        let ended = try #require(end)
        #expect(ended.reason == .stopped, "\(ended.message)")
        #expect(ended.lastCommittedEpoch >= 12)
        #expect(machine.isInBlackout, "a clean stop leaves every CPU stopped")

        // The last epoch stays in the journal (the stop writes none of it in place): the image
        // differs from memory in its frames, and only in them.
        let memory = try #require(machine.activeMemory)
        let before = try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount)

        // The backup host's takeover replays it: the image is the last epoch.
        let outcome = try ExportRecovery.recover(
            try FileExportDevice(path: export.path), name: export.path, newOwner: Self.backup)
        #expect(outcome.epoch == ended.lastCommittedEpoch)
        #expect(outcome.framesReplayed > 0, "the last epoch replayed from the journal")
        #expect(!before.isEmpty, "the stop wrote its last epoch in place")
        #expect(before.count <= outcome.framesReplayed, "\(before.count) frames differ before the replay")
        #expect(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test(
        "a standby a little behind: the read-back compares only the epochs it put in place; caught up, the export equals memory",
        arguments: [false, true])
    func standbyBehindReadBack(mapped: Bool) throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 4))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }
        // The standby runs only when the primary waits for it: the image is always an epoch or
        // two behind the last commit, so the read-back meets frames of epochs not yet in place.
        // Mapped, as `mirrord standby` runs; the primary's writes reach the same file through
        // another descriptor (the export's), between the standby's runs.
        let standby = ExportStandby(device: try FileExportDevice(path: export.path, mapped: mapped), name: export.path)
        let spare = try export.spare(applier: .standby(patience: 2, pause: { _ = try? standby.applyCommitted() }))

        let (summary, end) = Self.replicate(
            machine, to: spare, policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), epochs: 40)
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        let ended = try #require(end)
        #expect(ended.reason == .stopped, "\(ended.message)")
        let memory = try #require(machine.activeMemory)
        #expect(!(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty))
        #expect(try standby.applyCommitted().appliedEpoch == ended.lastCommittedEpoch)
        #expect(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test("a link slower than the writers: dirty-limit holds them to one pause's budget, never near a slot's size")
    func slowLink() throws {
        var options = Self.options(seed: 6)
        options.workload.pattern = .uniform
        let machine = try EmulatedMachine(options: options)
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }
        let spare = CuttableSpare(try export.spare())
        let engine = DuplexEngine(
            hardware: machine, policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), spare: spare,
            replication: Self.replication)
        #expect(engine.run().outcome.isReplicating)
        // Commits of 40 ms, against writers that dirty a slot's 1,024 frames in far less.
        spare.commitDelayMicroseconds.store(40_000, ordering: .relaxed)
        let frames = Mutex<[Int]>([])
        let limits = Mutex<[Int]>([])
        let end = engine.replicate { event in
            switch event {
            case .epochCommitted(let report):
                frames.withLock { $0.append(report.frames) }
                if report.epoch >= 12 { engine.stopToken.requestStop() }
            case .dirtyLimitChanged(let limit, _):
                limits.withLock { $0.append(limit) }
            case .throttleChanged, .finishing, .lastPause:
                break
            }
        }
        #expect(end.reason == .stopped, "\(end.message)")
        let capacity = spare.epochCapacity
        let slack = try #require(machine.dirtyLimitSlack)
        #expect(limits.withLock { $0.allSatisfy { $0 <= capacity / 2 } }, "held to a budget, never to a slot")
        // The clean stop's last epoch takes what the writers dirtied while the others shipped.
        let epochs = frames.withLock { $0.dropLast() }
        #expect(epochs.count >= 10)
        #expect(epochs.allSatisfy { $0 <= capacity / 2 + slack }, "epochs of \(epochs) frames (slot: \(capacity))")
    }

    @Test(
        "a clean stop with an epoch staged behind the one shipping: the CPUs run on while it commits (stopped once the writers reach their dirty limit), the last epoch takes the staged one in, and the export equals memory",
        arguments: [false, true])
    func lastEpochTakesInTheStagedOne(writersReachTheLimit: Bool) throws {
        var options = Self.options(seed: 14)
        if !writersReachTheLimit {
            // Stores to 16 frames, no DMA: the dirty set never nears the writers' limit.
            options.workload.hotFraction = 16.0 / 4_096
            options.workload.hotShare = 1
            options.dma.rate = .limited(bytesPerSecond: 0)
        }
        let machine = try EmulatedMachine(options: options)
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }
        let spare = CuttableSpare(try export.spare())
        // Epoch 5's commit is held until the stop has begun, so that epoch 6 is staged behind it.
        let held: UInt64 = 5
        spare.heldEpoch.store(held, ordering: .releasing)
        let paused = Mutex<[UInt64]>([])
        let committed = Mutex<[UInt64]>([])
        // Whether every CPU was stopped as each epoch's commit ended.
        let stoppedAtCommit = Mutex<[UInt64: Bool]>([:])
        let stagedBehind = DispatchSemaphore(value: 0)
        let hooks = ReplicationHooks(
            paused: { epoch in paused.withLock { $0.append(epoch) } },
            committed: { epoch in
                let stopped = machine.isInBlackout
                committed.withLock { $0.append(epoch) }
                stoppedAtCommit.withLock { $0[epoch] = stopped }
            },
            resumed: { epoch in if epoch == held + 1 { stagedBehind.signal() } })
        let engine = DuplexEngine(
            hardware: machine, policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), spare: spare,
            replication: Self.replication, hooks: hooks)
        try #require(engine.run().outcome.isReplicating)

        let reports = Mutex<[EpochReport]>([])
        let events = Mutex<[String]>([])
        let finishing = DispatchSemaphore(value: 0)
        let ended = Mutex<ReplicationEnd?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let end = engine.replicate { event in
                switch event {
                case .epochCommitted(let report):
                    reports.withLock { $0.append(report) }
                    events.withLock { $0.append("committed \(report.epoch)") }
                case .finishing:
                    events.withLock { $0.append("finishing") }
                    finishing.signal()
                case .lastPause:
                    events.withLock { $0.append("last pause") }
                default:
                    break
                }
            }
            ended.withLock { $0 = end }
            done.signal()
        }
        // Epoch 6 resumed the CPUs: it is staged and queued, and no slot is free for another.
        let behind = stagedBehind.wait(timeout: .now() + 120)
        if behind != .success { spare.releaseHeldCommit() }
        try #require(behind == .success, "epoch 6 never paused")
        engine.stopToken.requestStop()
        let began = finishing.wait(timeout: .now() + 120)
        // The stop has begun while epoch 5 ships: the CPUs run on, unless the writers reach their
        // dirty limit meanwhile (they would wait there: the machine is stopped then instead).
        let runningWhileShipping = !machine.isInBlackout
        if writersReachTheLimit {
            let deadline = Date().addingTimeInterval(120)
            while !machine.isInBlackout && Date() < deadline { sched_yield() }
        }
        let stoppedWhileShipping = machine.isInBlackout
        spare.releaseHeldCommit()
        try #require(began == .success, "the stop never began")
        // (Writers that reach their limit may do so before this look.)
        #expect(runningWhileShipping || writersReachTheLimit, "the stop stopped the CPUs at its request")
        #expect(
            stoppedWhileShipping == writersReachTheLimit,
            writersReachTheLimit
                ? "writers at their dirty limit, the CPUs were not stopped" : "the CPUs stopped below the dirty limit")
        #expect(done.wait(timeout: .now() + 120) == .success, "replication never ended")

        let end = try #require(ended.withLock { $0 })
        #expect(end.reason == .stopped, "\(end.message)")
        #expect(machine.isInBlackout, "a clean stop leaves every CPU stopped")
        #expect(
            stoppedAtCommit.withLock { $0[held] } == writersReachTheLimit,
            "epoch 5 committed with the CPUs \(writersReachTheLimit ? "stopped" : "running")")
        #expect(stoppedAtCommit.withLock { $0[held + 1] } == true, "the last epoch committed with every CPU stopped")
        #expect(end.lastCommittedEpoch == held + 1, "epoch 6 taken into the last one: \(end.message)")
        #expect(end.message.contains("with the epoch staged before the stop"), "\(end.message)")
        let order = events.withLock { $0 }
        let at = { (event: String) in order.firstIndex(of: event) ?? order.count }
        #expect(at("finishing") < at("committed \(held)"), "\(order)")
        #expect(at("last pause") < at("committed \(held + 1)"), "\(order)")
        if writersReachTheLimit { #expect(at("last pause") < at("committed \(held)"), "\(order)") }
        #expect(committed.withLock { $0.suffix(2) } == [held, held + 1])
        #expect(paused.withLock { $0.filter { $0 == held + 1 }.count } == 2, "its hook again at the stop")
        #expect(reports.withLock { $0.map(\.epoch) } == Array(2...(held + 1)))
        // Epoch 5, committed while every CPU waited for it, left the rest of its frames in the
        // journal: the takeover replays it with the last one.
        #expect(end.message.contains("told to leave the rest of its frames") == writersReachTheLimit, "\(end.message)")
        let pending = try ExportProbe.read(try FileExportDevice(path: export.path), name: export.path).pending
        #expect(pending.map(\.record.epoch) == (writersReachTheLimit ? [held, held + 1] : [held + 1]))
        let memory = try #require(machine.activeMemory)
        let outcome = try ExportRecovery.recover(
            try FileExportDevice(path: export.path), name: export.path, newOwner: Self.backup)
        #expect(outcome.epoch == held + 1)
        #expect(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test("two ascending frame lists merge into one, each frame once, in place")
    func mergeAscending() {
        func merged(_ list: [UInt32], into frames: [UInt32]) -> [UInt32] {
            var buffer = frames + Array(repeating: 0, count: list.count)
            return buffer.withUnsafeMutableBufferPointer { target in
                list.withUnsafeBufferPointer { source in
                    let count = EpochReplicator.mergeAscending(source, into: target, count: frames.count)
                    return Array(target[0..<count])
                }
            }
        }
        #expect(merged([1, 4, 9], into: [2, 4, 5, 10]) == [1, 2, 4, 5, 9, 10])
        #expect(merged([3, 5], into: [3, 5]) == [3, 5])
        #expect(merged([], into: [7, 8]) == [7, 8])
        #expect(merged([7, 8], into: []) == [7, 8])
        #expect(merged([0, 100], into: [50]) == [0, 50, 100])
        #expect(merged([], into: []) == [])
    }

    @Test("negative control: DMA untracked (dma.dual_write = false), DMA's writes never reach the spare")
    func dmaUntracked() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 5))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }

        var policy = DuplexPolicy(thresholdFrames: 256, maxPasses: 20)
        policy.dmaDualWrite = false
        let (summary, end) = Self.replicate(machine, to: try export.spare(), policy: policy, epochs: 12)
        #expect(summary.outcome.isReplicating, "\(summary.message)")
        let ended = try #require(end)
        // Either the read-back caught a frame nothing tracked, or the stopped machine differs.
        if ended.reason == .stopped {
            let memory = try #require(machine.activeMemory)
            #expect(!(try export.differingFrames(from: memory, frameCount: machine.geometry.frameCount).isEmpty))
        } else {
            #expect(ended.reason == .readBackMismatch, "\(ended.message)")
        }
    }
}

/// A spare store whose link can be cut: every call fails as unreachable while it is down.
final class CuttableSpare: SpareStore {
    let inner: ExportSpare
    let down = Atomic<Bool>(false)
    /// The next sync's start fails as unreachable (the link lost again just after a reconnect).
    let failNextBeginSync = Atomic<Bool>(false)
    /// Each commit takes this much longer: a link slower than the writers.
    let commitDelayMicroseconds = Atomic<Int>(0)
    /// The commit of this epoch waits for ``releaseHeldCommit()`` (0: none does).
    let heldEpoch = Atomic<UInt64>(0)
    private let heldCommit = DispatchSemaphore(value: 0)
    /// The image of the last commit's frames before that commit: what a spare host that lost its
    /// unflushed in-place writes holds again (see ``loseLastCommitsInPlaceWrites(to:)``).
    private let beforeLastCommit = Mutex<[(frame: Int, bytes: [UInt8])]>([])

    init(_ inner: ExportSpare) { self.inner = inner }

    var name: String { inner.name }
    var epochCapacity: Int { inner.epochCapacity }

    private func check(_ what: String) throws(SpareStoreError) {
        if down.load(ordering: .acquiring) {
            throw SpareStoreError(.unreachable, operation: "\(what) \(name)", reason: "the link is down")
        }
    }

    func reconnect() throws(SpareStoreError) -> Bool {
        try check("reconnect to")
        return try inner.reconnect()
    }
    func beginSync() throws(SpareStoreError) {
        try check("begin a sync on")
        if failNextBeginSync.exchange(false, ordering: .acquiringAndReleasing) {
            throw SpareStoreError(.unreachable, operation: "begin a sync on \(name)", reason: "the link is down again")
        }
        try inner.beginSync()
    }
    func write(frames: Range<Int>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try check("write to")
        try inner.write(frames: frames, of: memory)
    }
    func write(frameList: UnsafeBufferPointer<UInt32>, of memory: UnsafeRawPointer) throws(SpareStoreError) {
        try check("write to")
        try inner.write(frameList: frameList, of: memory)
    }
    func flush() throws(SpareStoreError) {
        try check("flush")
        try inner.flush()
    }
    func lastEpochFollows() { inner.lastEpochFollows() }
    func commit(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        try commit(epoch: epoch, frameList: frameList, staged: staged, last: false)
    }
    func commitLast(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer)
        throws(SpareStoreError)
    {
        try commit(epoch: epoch, frameList: frameList, staged: staged, last: true)
    }
    private func commit(epoch: UInt64, frameList: UnsafeBufferPointer<UInt32>, staged: UnsafeRawPointer, last: Bool)
        throws(SpareStoreError)
    {
        try check("commit to")
        if epoch == heldEpoch.load(ordering: .acquiring) { heldCommit.wait() }
        let delay = commitDelayMicroseconds.load(ordering: .relaxed)
        if delay > 0 { usleep(UInt32(delay)) }
        var before: [(frame: Int, bytes: [UInt8])] = []
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4_096, alignment: 4_096)
        defer { buffer.deallocate() }
        for frame in frameList {
            _ = try inner.read(frames: Int(frame)..<(Int(frame) + 1), into: buffer)
            before.append((Int(frame), Array(UnsafeRawBufferPointer(start: buffer, count: 4_096))))
        }
        if last {
            try inner.commitLast(epoch: epoch, frameList: frameList, staged: staged)
        } else {
            try inner.commit(epoch: epoch, frameList: frameList, staged: staged)
        }
        beforeLastCommit.withLock { $0 = before }
    }

    /// Lets the held epoch's commit go on.
    func releaseHeldCommit() { heldCommit.signal() }

    /// Puts the last commit's frames back as they were before it in the image file at `path`
    /// (12 KiB in): a spare host that went down before the next flush made them stable.
    func loseLastCommitsInPlaceWrites(to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        for (frame, bytes) in beforeLastCommit.withLock({ $0 }) {
            try handle.seek(toOffset: UInt64(12_288 + frame * 4_096))
            try handle.write(contentsOf: bytes)
        }
    }
    func read(frames: Range<Int>, into buffer: UnsafeMutableRawPointer) throws(SpareStoreError) -> UInt64 {
        try check("read from")
        return try inner.read(frames: frames, into: buffer)
    }
}

extension RemoteDuplexTests {
    /// A running machine replicating to an export file through a link a test can cut.
    struct CutPair {
        let machine: EmulatedMachine
        let export: Export
        let spare: CuttableSpare
        let engine: DuplexEngine

        /// Starts the machine of `options` and syncs it: replicating.
        init(options: EmulatedMachine.Options) throws {
            machine = try EmulatedMachine(options: options)
            try machine.start()
            export = try Export(for: machine)
            spare = CuttableSpare(try export.spare())
            engine = DuplexEngine(
                hardware: machine, policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), spare: spare,
                replication: RemoteDuplexTests.replication)
            #expect(engine.run().outcome.isReplicating)
        }

        func end() {
            machine.shutdown()
            export.remove()
        }
    }

    /// Replicates until `epochs` more epochs have committed, then cuts the link: replication must
    /// end on the spare being unreachable.
    static func replicateThenCut(_ engine: DuplexEngine, _ spare: CuttableSpare, epochs: Int) -> ReplicationEnd {
        let seen = Atomic<Int>(0)
        return engine.replicate { event in
            guard case .epochCommitted = event else { return }
            if seen.add(1, ordering: .relaxed).newValue == epochs { spare.down.store(true, ordering: .releasing) }
        }
    }

    @Test("the link cut while replicating, then back: an incremental resync, and the export equals memory after a stop")
    func incrementalResync() throws {
        // Stray stores rare and DMA slow, so that what changes during the outage is a part of
        // memory (the default workload dirties all of these 16 MiB within a second).
        var options = Self.options(seed: 7)
        options.workload.hotShare = 0.999
        options.dma.rate = .limited(bytesPerSecond: 256 << 10)
        let pair = try CutPair(options: options)
        defer { pair.end() }
        let (machine, export, spare, engine) = (pair.machine, pair.export, pair.spare, pair.engine)
        let cut = Self.replicateThenCut(engine, spare, epochs: 5)
        #expect(cut.reason == .spareFailed && cut.spareError?.kind == .unreachable, "\(cut.message)")

        // Still away: the try fails before anything is cleared, and the next one is incremental.
        #expect(engine.run().outcome == .failed(.spareUnreachable))
        spare.down.store(false, ordering: .releasing)
        let resynced = engine.run()
        #expect(resynced.outcome.isReplicating, "\(resynced.message)")
        let resync = try #require(resynced.resync, "an incremental resync, not a full copy")
        #expect(resynced.fullCopy == nil)
        let instead = resync.resentFrames + (resynced.passes.first?.copiedFrames ?? 0)
        #expect(instead < machine.geometry.frameCount / 2, "\(resynced.message)")

        engine.stopToken.reset()
        let stopped = Self.stopAfter(engine, epochs: 3)
        #expect(stopped.reason == .stopped, "\(stopped.message)")
        let memory = try #require(machine.activeMemory)
        #expect(try export.differingFramesTakenOver(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test("negative control: an export wiped while the link was down gets a sync from scratch, not a resync")
    func wipedExportResyncsInFull() throws {
        let pair = try CutPair(options: Self.options(seed: 8))
        defer { pair.end() }
        let (machine, export, spare, engine) = (pair.machine, pair.export, pair.spare, pair.engine)
        #expect(Self.replicateThenCut(engine, spare, epochs: 5).reason == .spareFailed)
        // The spare host lost its file: a new, empty export in its place.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: export.path))
        try handle.truncate(atOffset: 0)
        try handle.truncate(atOffset: export.layout.requiredBytes)
        try handle.close()
        spare.down.store(false, ordering: .releasing)
        let synced = engine.run()
        #expect(synced.outcome.isReplicating, "\(synced.message)")
        #expect(synced.resync == nil && synced.fullCopy != nil, "a full copy: the export no longer holds the epochs")
        engine.stopToken.reset()
        #expect(Self.stopAfter(engine, epochs: 3).reason == .stopped)
        let memory = try #require(machine.activeMemory)
        #expect(try export.differingFramesTakenOver(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test(
        "a machine started anew with its peer away (--spare-later) does not sync over a committed epoch; over none it does"
    )
    func startedAnewKeepsCommittedEpochs() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 12))
        try machine.start()
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }
        let (summary, end) = Self.replicate(
            machine, to: try export.spare(), policy: DuplexPolicy(thresholdFrames: 256, maxPasses: 20), epochs: 3)
        #expect(summary.outcome.isReplicating && end?.reason == .stopped, "\(summary.message)")
        let last = try #require(end?.lastCommittedEpoch)
        let before = try Data(contentsOf: URL(fileURLWithPath: export.path))

        func startedAnew(keepsCommittedEpochs: Bool) -> ExportSpare {
            let path = export.path
            return ExportSpare(
                name: path, layout: export.layout, owner: Self.owner, keepsCommittedEpochs: keepsCommittedEpochs
            ) { () throws(ExportError) -> any ExportDevice in try FileExportDevice(path: path) }
        }
        let refusing = startedAnew(keepsCommittedEpochs: true)
        #expect {
            try refusing.beginSync()
        } throws: { error in
            let error = error as? SpareStoreError
            return error?.kind == .failed && error?.reason.contains("holds a committed epoch (generation ") == true
                && error?.reason.contains("epoch \(last))") == true
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: export.path)) == before, "refused before a byte is written")
        #expect(throws: SpareStoreError.self, "refused again at the next try") { try refusing.beginSync() }

        // Negative control: a spare that keeps nothing syncs over the same export.
        try startedAnew(keepsCommittedEpochs: false).beginSync()
        #expect(try Data(contentsOf: URL(fileURLWithPath: export.path)) != before)
        // Its sync begun, the export holds no committed epoch of any sync: one started anew takes it.
        try startedAnew(keepsCommittedEpochs: true).beginSync()
    }

    @Test("after a takeover the spare's sync passes the taken-over export's generation (ExportSpare wiring)")
    func takenOverGenerationPassed() throws {
        let machine = try EmulatedMachine(options: Self.options(seed: 13))
        defer { machine.shutdown() }
        let export = try Export(for: machine)
        defer { export.remove() }
        // The export taken over got its generation from a clock an hour ahead of this one.
        let ahead = UInt64(Date().timeIntervalSince1970 + 3_600) * 1_000_000_000
        let path = export.path
        let spare = ExportSpare(name: path, layout: export.layout, owner: Self.owner, avoiding: ahead) {
            () throws(ExportError) -> any ExportDevice in try FileExportDevice(path: path)
        }
        try spare.beginSync()
        let header = try #require(try ExportProbe.read(FileExportDevice(path: path), name: path).header)
        #expect(header.generation > ahead)
    }

    @Test("a resync that fails after the reconnect is followed by a full sync: its dirty state is gone")
    func failedResyncThenFull() throws {
        let pair = try CutPair(options: Self.options(seed: 9))
        defer { pair.end() }
        let (machine, export, spare, engine) = (pair.machine, pair.export, pair.spare, pair.engine)
        #expect(Self.replicateThenCut(engine, spare, epochs: 5).reason == .spareFailed)
        spare.down.store(false, ordering: .releasing)
        spare.failNextBeginSync.store(true, ordering: .releasing)
        #expect(engine.run().outcome == .failed(.spareUnreachable))
        let synced = engine.run()
        #expect(synced.outcome.isReplicating, "\(synced.message)")
        #expect(synced.resync == nil && synced.fullCopy != nil, "tracking stopped with the failed try: a full copy")
        engine.stopToken.reset()
        #expect(Self.stopAfter(engine, epochs: 3).reason == .stopped)
        let memory = try #require(machine.activeMemory)
        #expect(try export.differingFramesTakenOver(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    @Test("the spare host lost its last commit's unflushed in-place writes: the resync sends them again")
    func resyncAfterSpareLostWrites() throws {
        var options = Self.options(seed: 11)
        options.workload.hotShare = 0.999
        options.dma.rate = .limited(bytesPerSecond: 256 << 10)
        let pair = try CutPair(options: options)
        defer { pair.end() }
        let (machine, export, spare, engine) = (pair.machine, pair.export, pair.spare, pair.engine)
        #expect(Self.replicateThenCut(engine, spare, epochs: 5).reason == .spareFailed)
        // Down, the spare host lost what its last commit wrote in place and had not flushed.
        try spare.loseLastCommitsInPlaceWrites(to: export.path)
        spare.down.store(false, ordering: .releasing)
        let resynced = engine.run()
        #expect(resynced.outcome.isReplicating && resynced.resync != nil, "\(resynced.message)")
        engine.stopToken.reset()
        #expect(Self.stopAfter(engine, epochs: 3).reason == .stopped)
        let memory = try #require(machine.activeMemory)
        #expect(try export.differingFramesTakenOver(from: memory, frameCount: machine.geometry.frameCount).isEmpty)
    }

    /// Replicates `epochs` more epochs, then a clean stop.
    static func stopAfter(_ engine: DuplexEngine, epochs: Int) -> ReplicationEnd {
        let seen = Atomic<Int>(0)
        return engine.replicate { event in
            guard case .epochCommitted = event else { return }
            if seen.add(1, ordering: .relaxed).newValue == epochs { engine.stopToken.requestStop() }
        }
    }
}
