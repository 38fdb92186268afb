import Foundation
import MirrorCore
import MirrorEmulation
import MirrorNBD
import MirrorReplication
import MirrordConfig
import MirrordService
import Synchronization

/// `mirrord-bench --only remote`, its second half: epochs of a running machine (issue 25's
/// figures), twice in one run on the same export: the primary putting each committed epoch in
/// place over the link (`remote.standby = false`), then `mirrord standby` doing it on the spare
/// host (`remote.standby = true`). Each time a machine of the default workload (hot set, its rate
/// and CPUs, DMA on; no emulated MMU, no churn) is synced to the export by the engine, replicated
/// for a few seconds at the default `remote.epoch` and `remote.staging`, and stopped cleanly;
/// every epoch's pause is held against `duplex.blackout_target`, its commit lag against the epoch,
/// and the workload's stores against a baseline taken before the sync. Then the takeover as
/// `mirrord takeover` makes it: a copy of the export taken between two commits (what a spare host
/// holds when the primary dies there) is recovered, the machine built on its image (mapped
/// copy-on-write) and its CPUs started.
enum ReplicationBench {
    /// Windows of the store-rate baseline, each this long; the median is taken.
    static let baselineWindows = 5
    static let baselineWindowNanoseconds: UInt64 = 200_000_000

    /// Who puts the committed epochs in place on the spare host's image.
    enum Applier: String, Sendable {
        /// The primary, over the link, after each commit record.
        case primary
        /// `mirrord standby` beside the export's file.
        case standby
    }

    /// Measures `seconds` of replication of a machine of `bytes` to the export at `uri` (nil: a
    /// local `nbd-server` with its file in `/dev/shm`), once with each applier, on the same export;
    /// `nbdcopyMBps` is the link's own speed to it, this run. The standby and the takeover are
    /// measured only with the local server (they need the export's file).
    static func measure(
        uri given: String?, bytes: Int, seconds: Double, rate: ByteRate? = nil, nbdcopyMBps: Double
    ) throws -> [ReplicationResult] {
        let memcpy = memcpyGBps(bytes: bytes)
        var config = MirrordConfiguration()
        config.machine.memorySize = bytes
        config.machine.mmu.enabled = false
        config.machine.workload.churn = 0
        if let rate { config.machine.workload.rate = rate }
        var server: NBDLocalServer?
        let appliers: [Applier] = given == nil ? [.primary, .standby] : [.primary]
        return try appliers.map { applier in
            try replicate(
                applier, config: config, uri: given, server: &server, seconds: seconds, memcpyGBps: memcpy,
                nbdcopyMBps: nbdcopyMBps)
        }
    }

    /// One replication with `applier`, on the export at `given` or the local `server` (started on
    /// the first call), then the takeover of the crash copy.
    private static func replicate(
        _ applier: Applier, config base: MirrordConfiguration, uri given: String?, server shared: inout NBDLocalServer?,
        seconds: Double, memcpyGBps memcpy: Double, nbdcopyMBps: Double
    ) throws -> ReplicationResult {
        var config = base
        config.remote.standby = applier == .standby
        let bytes = config.machine.memorySize
        let replication = config.replication
        let machine = try MachineFactory.makeMachine(config)
        // MIRRORD_BENCH_STAGE_IN_PAUSE=1: the baseline of copy-on-write staging, each epoch's copy
        // inside its pause, on the same build and host.
        let copyOnWrite = ProcessInfo.processInfo.environment["MIRRORD_BENCH_STAGE_IN_PAUSE"] != "1"
        machine.offersCopyOnWrite.store(copyOnWrite, ordering: .relaxed)
        var primaryStopped = false
        defer { if !primaryStopped { machine.shutdown() } }
        let layout = ExportLayout(
            frameSize: machine.geometry.frameSize, frameCount: machine.geometry.frameCount,
            journalFrames: replication.epochCapacity(frameSize: machine.geometry.frameSize))
        if given == nil && shared == nil {
            shared = try NBDLocalServer(size: Int(layout.requiredBytes), parent: URL(fileURLWithPath: "/dev/shm"))
        }
        let server = given == nil ? shared : nil
        let uri = given ?? server!.uri
        let owner = ExportOwner(
            machineID: String(repeating: "0", count: 32), hostname: "mirrord-bench", pid: getpid(), since: 0)
        let device = try NBDExportDevice(uri: uri)
        // A header left by the first half of the section (or the last replication) is not this one's.
        try device.write([UInt8](repeating: 0, count: 2 * ExportLayout.blockSize), at: 0, durable: true)
        // The standby before the sync: a primary with one begins it only once it is acknowledged.
        let standby = try server.flatMap { applier == .standby ? try Standby.start(image: $0.file.path) : nil }
        let spare = ExportSpare(
            journal: try EpochJournal(
                device: device, name: uri, layout: layout, owner: owner,
                applier: RemoteSpareConnector.applier(config.remote)),
            owner: owner)

        try machine.start()
        Thread.sleep(forTimeInterval: 0.3)
        let baseline = storeRate(machine)

        // Just after each pause's resume, the engine thread's faults, its involuntary switches
        // and its time runnable but not running: what a pause's tail is made of. Taken outside the
        // pause: a read of /proc inside it added a few µs to each, and up to 3 ms when the host
        // took the thread's CPU in the system calls (a third of the pauses over the target once
        // the stage copy had left the pause).
        let threadSamples = Mutex<[UInt64: ThreadSample]>([:])
        let hooks = ReplicationHooks(resumed: { epoch in
            let sample = ThreadSample.now()
            threadSamples.withLock { $0[epoch] = sample }
        })
        let engine = DuplexEngine(
            hardware: machine, policy: config.policy, spare: spare, replication: replication, hooks: hooks)
        let syncStart = MonotonicClock.nanoseconds()
        let summary = engine.run()
        let syncNanoseconds = MonotonicClock.nanoseconds() &- syncStart
        guard summary.outcome.isReplicating, let first = summary.firstEpoch else {
            throw RemoteBenchError(
                "the sync to \(uri) (\(applier.rawValue) applying) did not reach replicating: \(summary.message)")
        }

        let run = Run()
        let exportFile = server?.file.path
        let snapshotPath = server.map { $0.directory.appendingPathComponent("crash.img").path }
        defer { if let snapshotPath { try? FileManager.default.removeItem(atPath: snapshotPath) } }
        let window = UInt64(seconds * 1e9)
        // The clock: the measuring window, then (with a local server) a copy of the export between
        // two commits, then the clean stop.
        let standbyPID = standby?.pid
        let serverPID = server?.pid
        let timer = try WorkerThread(name: "mirrord-bench-t") {
            let cpuBefore = CPUSample.now(standby: standbyPID, serverGroup: serverPID)
            let before = totalStores(machine)
            let start = MonotonicClock.nanoseconds()
            run.state.withLock { $0.started = true }
            Thread.sleep(forTimeInterval: Double(window) / 1e9)
            let stores = totalStores(machine) &- before
            let elapsed = MonotonicClock.nanoseconds() &- start
            let cpu = CPUShare(
                from: cpuBefore, to: CPUSample.now(standby: standbyPID, serverGroup: serverPID), nanoseconds: elapsed)
            run.state.withLock {
                $0.cpu = cpu
                $0.storesPerSecond = Double(stores) / (Double(elapsed) / 1e9)
                $0.windowEpoch = $0.reports.last?.epoch ?? 0
                $0.windowNanoseconds = elapsed
                $0.snapshotWanted = snapshotPath != nil
            }
            // The copy is taken in the next commit's observer; a hung link must not hang the bench.
            let deadline = MonotonicClock.nanoseconds() + 60_000_000_000
            while run.state.withLock({ $0.snapshotWanted }) && MonotonicClock.nanoseconds() < deadline {
                usleep(1_000)
            }
            engine.stopToken.requestStop()
        }
        let end = engine.replicate { event in
            switch event {
            case .epochCommitted(let report):
                let copy = run.state.withLock { state -> Bool in
                    guard state.started else { return false }
                    state.reports.append(report)
                    return state.snapshotWanted
                }
                guard copy, let exportFile, let snapshotPath else { return }
                // On the shipping thread, between this commit and the next: the file as the spare
                // host holds it if the primary dies now.
                let error = copyFile(exportFile, to: snapshotPath)
                run.state.withLock {
                    $0.snapshotEpoch = report.epoch
                    $0.snapshotError = error
                    $0.snapshotWanted = false
                }
            case .dirtyLimitChanged(let frames, _):
                run.state.withLock {
                    $0.dirtyLimitChanges += 1
                    $0.lowestDirtyLimit = $0.lowestDirtyLimit == 0 ? frames : min($0.lowestDirtyLimit, frames)
                }
            case .throttleChanged(let percent, _):
                run.state.withLock {
                    $0.throttleChanges += 1
                    $0.maxThrottlePercent = max($0.maxThrottlePercent, percent)
                }
            case .finishing, .lastPause:
                break
            }
        }
        timer.join()
        // The standby stops before the takeover (it holds the image file), with status 0.
        let standbyRun = try standby?.stop()
        // The primary host is gone: its machine no longer shares the CPUs with the takeover.
        machine.shutdown()
        primaryStopped = true
        let state = run.state.withLock { $0 }
        guard end.reason == .stopped else {
            throw RemoteBenchError(
                "replication to \(uri) (\(applier.rawValue) applying) ended \(end.reason.rawValue): \(end.message)")
        }
        let measured = state.reports.filter { $0.epoch <= state.windowEpoch && $0.epoch > 1 }
        let samples = threadSamples.withLock { $0 }
        let rows = measured.map { report -> ReplicationResult.Row in
            // From this pause's resume to the next's: its stage copy, the wait, the next pause.
            let next = samples[report.epoch + 1]
            let this = samples[report.epoch]
            let delta = this.flatMap { a in next.map { $0.minus(a) } }
            return ReplicationResult.Row(report: report, thread: delta)
        }
        guard !measured.isEmpty else { throw RemoteBenchError("no epoch committed in \(seconds) s of replication") }

        var takeover: ReplicationResult.Takeover?
        if let server, let snapshotPath {
            if let error = state.snapshotError { throw RemoteBenchError("copying the export: \(error)") }
            takeover = try takeOver(
                snapshotPath, config: config, layout: layout, epoch: state.snapshotEpoch, cleanStop: server.file.path,
                cleanStopEpoch: end.lastCommittedEpoch)
        }
        var result = ReplicationResult(
            applier: applier.rawValue, standby: standbyRun,
            memoryBytes: bytes, cpus: machine.cpuCount, workloadRate: config.machine.workload.rate.description,
            epochMicroseconds: replication.epochNanoseconds / 1_000,
            stagingBytes: replication.stagingBytes, targetMicroseconds: config.policy.blackoutTargetNanoseconds / 1_000,
            syncMicroseconds: syncNanoseconds / 1_000, syncPasses: summary.passes.count,
            fullCopyGBps: summary.fullCopy?.gigabytesPerSecond ?? 0,
            syncEnd: summary.passEndReason?.rawValue ?? "none",
            syncBlackoutMicroseconds: summary.blackout?.durationMicroseconds ?? 0,
            syncFinalFrames: summary.blackout?.finalFrames ?? 0,
            syncMaxThrottlePercent: summary.convergence.maximumThrottlePercent, syncPassList: summary.passes,
            firstEpoch: first,
            windowMicroseconds: state.windowNanoseconds / 1_000, reports: measured, rows: rows,
            lastCommittedEpoch: end.lastCommittedEpoch, throttleChanges: state.throttleChanges,
            maxThrottlePercent: state.maxThrottlePercent, baselineStoresPerSecond: baseline,
            replicatingStoresPerSecond: state.storesPerSecond, cpu: state.cpu, takeover: takeover, memcpyGBps: memcpy,
            nbdcopyMBps: nbdcopyMBps)
        result.dirtyLimitChanges = state.dirtyLimitChanges
        result.copyOnWrite = machine.copyOnWriteStaging != nil
        result.lowestDirtyLimitFrames = state.lowestDirtyLimit
        return result
    }

    /// The takeover on the backup host, as `mirrord takeover` makes it: `Takeover.recover` of the
    /// crash copy at `path` (header against the configuration, records, checksums, the epochs not
    /// yet in place replayed, flush), `Takeover.makeMachine` on its image (mapped private, no page
    /// touched), the machine's start; timed from before the recovery to the CPUs running, then
    /// to their first store counted; the machine is stopped again. For comparison, the recovered
    /// image mapped and every page read; and the recovery of the export the clean stop left.
    static func takeOver(
        _ path: String, config: MirrordConfiguration, layout: ExportLayout, epoch: UInt64, cleanStop: String,
        cleanStopEpoch: UInt64
    ) throws -> ReplicationResult.Takeover {
        let start = MonotonicClock.nanoseconds()
        let recovery: TakeoverRecovery
        do {
            recovery = try Takeover.recover(
                TakeoverOptions(
                    source: .image(path: path), stagingBytes: config.replication.stagingBytes, startedAt: start),
                configuration: config)
        } catch {
            throw RemoteBenchError("the takeover of the crash copy: \(error)")
        }
        let recovered = MonotonicClock.nanoseconds()
        let machine: EmulatedMachine
        do {
            machine = try Takeover.makeMachine(config, from: recovery)
        } catch {
            throw RemoteBenchError("the takeover's machine: \(error)")
        }
        let built = MonotonicClock.nanoseconds()
        do {
            try machine.start()
        } catch {
            machine.shutdown()
            throw RemoteBenchError("the takeover's machine did not start: \(error)")
        }
        let running = MonotonicClock.nanoseconds()
        // The CPUs at work on the image: their first store counted (a second at most).
        var firstStore: UInt64?
        while MonotonicClock.nanoseconds() &- running < 1_000_000_000 {
            if totalStores(machine) > 0 {
                firstStore = MonotonicClock.nanoseconds()
                break
            }
            usleep(20)
        }
        machine.shutdown()
        // The export stays open (the file locked) while the machine runs, as in the service.
        withExtendedLifetime(recovery) {}
        guard recovery.outcome.epoch == epoch else {
            throw RemoteBenchError("the takeover found epoch \(recovery.outcome.epoch), not \(epoch)")
        }

        let map = try mapImage(
            path: path, offset: layout.imageOffset, bytes: config.machine.memorySize, populate: false)
        let populated = try mapImage(
            path: path, offset: layout.imageOffset, bytes: config.machine.memorySize, populate: true)
        guard map.sum == populated.sum else { throw RemoteBenchError("the image read twice differs") }

        let cleanStart = MonotonicClock.nanoseconds()
        let clean = try ExportRecovery.recover(try FileExportDevice(path: cleanStop), name: cleanStop)
        let cleanEnd = MonotonicClock.nanoseconds()
        guard clean.epoch == cleanStopEpoch else {
            throw RemoteBenchError("the clean stop's export holds epoch \(clean.epoch), not \(cleanStopEpoch)")
        }
        return ReplicationResult.Takeover(
            epoch: recovery.outcome.epoch, framesReplayed: recovery.outcome.framesReplayed,
            recoverMicroseconds: (recovered &- start) / 1_000, makeMachineMicroseconds: (built &- recovered) / 1_000,
            startMicroseconds: (running &- built) / 1_000,
            firstStoreMicroseconds: firstStore.map { ($0 &- start) / 1_000 },
            mapMicroseconds: (map.mapNanoseconds + map.touchNanoseconds) / 1_000,
            mmapMicroseconds: map.mapNanoseconds / 1_000,
            populateMicroseconds: (populated.mapNanoseconds + populated.touchNanoseconds) / 1_000,
            cleanStopFramesReplayed: clean.framesReplayed,
            cleanStopRecoverMicroseconds: (cleanEnd &- cleanStart) / 1_000)
    }

    /// What the clock thread, the observer and the caller share.
    final class Run: Sendable {
        struct State {
            var started = false
            var reports: [EpochReport] = []
            var windowEpoch: UInt64 = 0
            var windowNanoseconds: UInt64 = 0
            var storesPerSecond = 0.0
            var cpu: CPUShare?
            var throttleChanges = 0
            var maxThrottlePercent = 0.0
            var dirtyLimitChanges = 0
            var lowestDirtyLimit = 0
            var snapshotWanted = false
            var snapshotEpoch: UInt64 = 0
            var snapshotError: String?
        }
        let state = Mutex(State())
    }

    /// One thread's `memcpy` of `bytes` between two buffers already faulted in, GB/s: the median
    /// of three.
    static func memcpyGBps(bytes: Int) -> Double {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        let target = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer {
            source.deallocate()
            target.deallocate()
        }
        memset(source, 0x5a, bytes)
        memset(target, 0, bytes)
        let rates = (0..<3).map { _ -> Double in
            let start = MonotonicClock.nanoseconds()
            memcpy(target, source, bytes)
            return Double(bytes) / Double(MonotonicClock.nanoseconds() &- start)
        }
        return rates.sorted()[1]
    }

    /// A thread's counters: minor faults, involuntary context switches, nanoseconds runnable but
    /// waiting for a CPU (`/proc/thread-self/schedstat`'s run delay).
    struct ThreadSample: Sendable {
        var faults: Int
        var involuntarySwitches: Int
        var runDelayNanoseconds: UInt64

        /// The calling thread's counters now.
        static func now() -> ThreadSample {
            var usage = rusage()
            // RUSAGE_THREAD (1): glibc declares it only under _GNU_SOURCE.
            getrusage(.init(1), &usage)
            return ThreadSample(
                faults: usage.ru_minflt, involuntarySwitches: usage.ru_nivcsw, runDelayNanoseconds: runDelay())
        }

        /// The second field of `/proc/thread-self/schedstat` (0 if it cannot be read).
        static func runDelay() -> UInt64 {
            let fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return 0 }
            defer { close(fd) }
            var buffer = (0..<64).map { _ in UInt8(0) }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 63) }
            guard count > 0 else { return 0 }
            let fields = buffer[0..<count].split(separator: UInt8(ascii: " "))
            guard fields.count >= 2 else { return 0 }
            return UInt64(String(decoding: fields[1], as: UTF8.self)) ?? 0
        }

        /// The counts from `earlier` to this.
        func minus(_ earlier: ThreadSample) -> ThreadSample {
            ThreadSample(
                faults: faults - earlier.faults, involuntarySwitches: involuntarySwitches - earlier.involuntarySwitches,
                runDelayNanoseconds: runDelayNanoseconds &- earlier.runDelayNanoseconds)
        }
    }

    /// Every CPU's stores so far.
    static func totalStores(_ machine: EmulatedMachine) -> UInt64 {
        (0..<machine.cpuCount).reduce(0) { $0 &+ machine.cpuCounters($1).stores }
    }

    /// The CPUs' stores a second with nothing tracked: the median of a few windows.
    static func storeRate(_ machine: EmulatedMachine) -> Double {
        let rates = (0..<baselineWindows).map { _ -> Double in
            let before = totalStores(machine)
            let start = MonotonicClock.nanoseconds()
            Thread.sleep(forTimeInterval: Double(baselineWindowNanoseconds) / 1e9)
            let elapsed = MonotonicClock.nanoseconds() &- start
            return Double(totalStores(machine) &- before) / (Double(elapsed) / 1e9)
        }
        return rates.sorted()[rates.count / 2]
    }

    /// Copies the file at `source` to `target` (a fresh file); nil, or why not.
    static func copyFile(_ source: String, to target: String) -> String? {
        try? FileManager.default.removeItem(atPath: target)
        do {
            try FileManager.default.copyItem(atPath: source, toPath: target)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The takeover's view of the image: `bytes` of the file at `path` from `offset`, mapped
    /// private (the machine's stores stay its own), every page read once so that it is present.
    /// With `populate`, `MAP_POPULATE` has the kernel map every page in the `mmap` call instead.
    /// Returns the times of the `mmap` and of the reads, and the sum of the bytes read (the caller
    /// uses it, so that no read is dropped).
    static func mapImage(path: String, offset: UInt64, bytes: Int, populate: Bool) throws
        -> (mapNanoseconds: UInt64, touchNanoseconds: UInt64, sum: UInt64)
    {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw RemoteBenchError("open \(path): errno \(errno)") }
        defer { close(fd) }
        let start = MonotonicClock.nanoseconds()
        let flags = MAP_PRIVATE | (populate ? MAP_POPULATE : 0)
        guard let base = mmap(nil, bytes, PROT_READ | PROT_WRITE, flags, fd, off_t(offset)),
            base != MAP_FAILED
        else { throw RemoteBenchError("mmap \(path): errno \(errno)") }
        defer { munmap(base, bytes) }
        let mapped = MonotonicClock.nanoseconds()
        var sum: UInt64 = 0
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytesBase = base.assumingMemoryBound(to: UInt8.self)
        for offset in stride(from: 0, to: bytes, by: page) {
            sum &+= UInt64(bytesBase[offset])
        }
        return (mapped &- start, MonotonicClock.nanoseconds() &- mapped, sum)
    }
}

/// Nearest-rank percentiles of a sample.
enum Percentile {
    /// The `p`-th percentile (0 < p ≤ 100) of `values` by nearest rank: the smallest value with at
    /// least p % of the sample at or below it; 0 for an empty sample.
    static func of<T: Comparable & Numeric>(_ values: [T], _ p: Double) -> T {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }
}

/// Epochs of a running machine, and the takeover of what they left.
struct ReplicationResult: Encodable {
    /// One epoch in the JSON: its report's figures and the engine thread's counters from its
    /// pause's hook (after the harvest) to the next pause's.
    struct Row: Encodable {
        let epoch: UInt64
        let frames: Int
        let pauseMicroseconds: UInt64
        let stopMicroseconds: UInt64
        let stageMicroseconds: UInt64
        let commitMicroseconds: UInt64
        let lagMicroseconds: UInt64
        let epochsBehind: Int
        /// Minor faults (the staging slot's pages taken for the first time), involuntary context
        /// switches, and microseconds runnable but not running; nil without both samples.
        let faults: Int?
        let involuntarySwitches: Int?
        let runDelayMicroseconds: UInt64?

        init(report: EpochReport, thread: ReplicationBench.ThreadSample?) {
            epoch = report.epoch
            frames = report.frames
            pauseMicroseconds = report.pauseMicroseconds
            stopMicroseconds = report.stopMicroseconds
            stageMicroseconds = report.stageMicroseconds
            commitMicroseconds = report.commitMicroseconds
            lagMicroseconds = report.lagMicroseconds
            epochsBehind = report.epochsBehind
            faults = thread?.faults
            involuntarySwitches = thread?.involuntarySwitches
            runDelayMicroseconds = thread.map { $0.runDelayNanoseconds / 1_000 }
        }

        enum CodingKeys: String, CodingKey {
            case epoch, frames, faults
            case pauseMicroseconds = "pause_us"
            case stopMicroseconds = "stop_us"
            case stageMicroseconds = "stage_us"
            case commitMicroseconds = "commit_us"
            case lagMicroseconds = "lag_us"
            case epochsBehind = "behind"
            case involuntarySwitches = "involuntary_switches"
            case runDelayMicroseconds = "run_delay_us"
        }
    }

    /// The takeover on the backup host.
    struct Takeover: Encodable {
        /// The epoch the crash copy held, and the frames its recovery replayed.
        let epoch: UInt64
        let framesReplayed: Int
        /// `Takeover.recover` on the copy: open and lock, header against the configuration,
        /// records, checksums, replay, flush.
        let recoverMicroseconds: UInt64
        /// `Takeover.makeMachine`: the machine built on the image, mapped private (no page touched).
        let makeMachineMicroseconds: UInt64
        /// The machine's start: its CPU threads and DMA engine running.
        let startMicroseconds: UInt64
        /// From before the recovery to the CPUs' first store counted (nil: none within a second).
        let firstStoreMicroseconds: UInt64?
        /// For comparison: the recovered image mapped private and every page read; the `mmap`
        /// alone; the same with `MAP_POPULATE` and the reads (every page then present already).
        let mapMicroseconds: UInt64
        let mmapMicroseconds: UInt64
        let populateMicroseconds: UInt64
        /// The same recovery on the export the clean stop left.
        let cleanStopFramesReplayed: Int
        let cleanStopRecoverMicroseconds: UInt64
        /// The takeover: from before the recovery to the machine's CPUs running (target ≤ 100 ms).
        var totalMicroseconds: UInt64 { recoverMicroseconds + makeMachineMicroseconds + startMicroseconds }
        /// The recovery, then every page of the image touched (the earlier figure, for comparison).
        var touchTotalMicroseconds: UInt64 { recoverMicroseconds + mapMicroseconds }

        enum CodingKeys: String, CodingKey {
            case epoch
            case framesReplayed = "frames_replayed"
            case recoverMicroseconds = "recover_us"
            case makeMachineMicroseconds = "make_machine_us"
            case startMicroseconds = "start_us"
            case firstStoreMicroseconds = "first_store_us"
            case totalMicroseconds = "total_us"
            case mapMicroseconds = "map_us"
            case mmapMicroseconds = "mmap_us"
            case populateMicroseconds = "populate_us"
            case touchTotalMicroseconds = "touch_total_us"
            case cleanStopFramesReplayed = "clean_stop_frames_replayed"
            case cleanStopRecoverMicroseconds = "clean_stop_recover_us"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(epoch, forKey: .epoch)
            try c.encode(framesReplayed, forKey: .framesReplayed)
            try c.encode(recoverMicroseconds, forKey: .recoverMicroseconds)
            try c.encode(makeMachineMicroseconds, forKey: .makeMachineMicroseconds)
            try c.encode(startMicroseconds, forKey: .startMicroseconds)
            try c.encodeIfPresent(firstStoreMicroseconds, forKey: .firstStoreMicroseconds)
            try c.encode(totalMicroseconds, forKey: .totalMicroseconds)
            try c.encode(mapMicroseconds, forKey: .mapMicroseconds)
            try c.encode(mmapMicroseconds, forKey: .mmapMicroseconds)
            try c.encode(populateMicroseconds, forKey: .populateMicroseconds)
            try c.encode(touchTotalMicroseconds, forKey: .touchTotalMicroseconds)
            try c.encode(cleanStopFramesReplayed, forKey: .cleanStopFramesReplayed)
            try c.encode(cleanStopRecoverMicroseconds, forKey: .cleanStopRecoverMicroseconds)
        }
    }

    /// Who put the committed epochs in place (`primary`, `standby`), and how the standby ran.
    let applier: String
    let standby: String?
    /// The machine's memory and CPUs.
    let memoryBytes: Int
    let cpus: Int
    /// The workload's rate (`workload.rate`).
    let workloadRate: String
    /// `remote.epoch`, `remote.staging` and `duplex.blackout_target` in force.
    let epochMicroseconds: UInt64
    let stagingBytes: Int
    let targetMicroseconds: UInt64
    /// The sync: from tracking on to the first epoch committed; its passes and full copy.
    let syncMicroseconds: UInt64
    let syncPasses: Int
    let fullCopyGBps: Double
    /// Why the sync's passes ended, its final blackout and the frames in it, and its throttle.
    let syncEnd: String
    let syncBlackoutMicroseconds: UInt64
    let syncFinalFrames: Int
    let syncMaxThrottlePercent: Double
    /// The sync's passes as the engine reported them (dirty frames, duration, throttle, prediction).
    let syncPassList: [DuplexSummary.Pass]
    let firstEpoch: EpochReport
    /// The measuring window, and every epoch committed in it (the first excluded).
    let windowMicroseconds: UInt64
    let reports: [EpochReport]
    /// Each of them, with the engine thread's counters from its pause to the next.
    let rows: [Row]
    /// The clean stop's last epoch.
    let lastCommittedEpoch: UInt64
    /// Throttle changes in the whole replication, and the highest.
    let throttleChanges: Int
    let maxThrottlePercent: Double
    /// Changes of the writers' dirty limit (held to a pause's budget while the link is behind,
    /// then let go), and the lowest it was set to (0: never changed).
    var dirtyLimitChanges = 0
    var lowestDirtyLimitFrames = 0
    /// Whether the epochs were staged copy-on-write (the copy after the resume).
    var copyOnWrite = false
    /// The CPUs' stores a second before the sync (nothing tracked) and while replicating.
    let baselineStoresPerSecond: Double
    let replicatingStoresPerSecond: Double
    /// Where the host's CPUs went in the measuring window.
    let cpu: CPUShare?
    let takeover: Takeover?
    /// One thread's `memcpy` of the whole memory, this run: the baseline of the copies.
    let memcpyGBps: Double
    /// `nbdcopy` to the same export, this run (the section's first half): the link's own speed.
    let nbdcopyMBps: Double

    var epochs: Int { reports.count }
    var pauses: [UInt64] { reports.map(\.pauseMicroseconds) }
    var pauseP50: UInt64 { Percentile.of(pauses, 50) }
    var pauseP99: UInt64 { Percentile.of(pauses, 99) }
    var pauseMax: UInt64 { pauses.max() ?? 0 }
    /// Commit lag in epochs: from the pause to the end of its commit, over `remote.epoch`.
    var lagEpochs: [Double] { reports.map { Double($0.lagMicroseconds) / Double(max(1, epochMicroseconds)) } }
    var lagP50: Double { Percentile.of(lagEpochs, 50) }
    var lagP99: Double { Percentile.of(lagEpochs, 99) }
    var framesP50: Int { Percentile.of(reports.map(\.frames), 50) }
    var framesP99: Int { Percentile.of(reports.map(\.frames), 99) }
    var commitP50: UInt64 { Percentile.of(reports.map(\.commitMicroseconds), 50) }
    var commitP99: UInt64 { Percentile.of(reports.map(\.commitMicroseconds), 99) }
    /// The link's speed in commits: all their bytes over all their time, MB/s.
    var linkMBps: Double {
        let bytes = reports.reduce(0) { $0 + $1.frames } * 4096
        let micros = reports.reduce(0) { $0 + $1.commitMicroseconds }
        return micros > 0 ? Double(bytes) / Double(micros) : 0
    }
    /// The link in commits against `nbdcopy`'s speed to the same export.
    var linkRatio: Double { nbdcopyMBps > 0 ? linkMBps / nbdcopyMBps : 0 }
    var epochsPerSecond: Double { Double(epochs) / (Double(max(1, windowMicroseconds)) / 1e6) }
    /// The share of all pause time spent in stage copies made inside the pause (0 with
    /// copy-on-write staging, whose copy follows the resume).
    var stageShare: Double {
        let paused = reports.reduce(0) { $0 + $1.pauseMicroseconds }
        return paused > 0 ? Double(reports.reduce(0) { $0 + Self.stageInPause($1) }) / Double(paused) : 0
    }
    /// The share of the epochs' frames the writers copied themselves (copy-on-write staging: a
    /// store to a frame still pending).
    var writerCopyShare: Double {
        let frames = reports.reduce(0) { $0 + $1.frames }
        return frames > 0 ? Double(reports.reduce(0) { $0 + $1.framesCopiedByWriters }) / Double(frames) : 0
    }
    /// The stage copy's time a frame, over every epoch, µs.
    var stageMicrosecondsPerFrame: Double {
        let frames = reports.reduce(0) { $0 + $1.frames }
        return frames > 0 ? Double(reports.reduce(0) { $0 + $1.stageMicroseconds }) / Double(frames) : 0
    }
    /// The engine thread's run delay from one pause to the next: p50 and p99, µs.
    var runDelays: [UInt64] { rows.compactMap(\.runDelayMicroseconds) }
    var runDelayP50: UInt64 { Percentile.of(runDelays, 50) }
    var runDelayP99: UInt64 { Percentile.of(runDelays, 99) }
    /// The workload's slowdown from replication: 1 − stores while replicating ÷ stores before.
    var slowdown: Double { Self.slowdown(baseline: baselineStoresPerSecond, during: replicatingStoresPerSecond) }
    /// Pauses over the target, and the pause's parts at the 99th percentile and above: the
    /// stop, the stage copy, and the rest (harvest, candidates, resume).
    var overTarget: Int { pauses.filter { $0 > targetMicroseconds }.count }
    var tail: [EpochReport] { reports.filter { $0.pauseMicroseconds >= pauseP99 } }
    var stopP50: UInt64 { Percentile.of(reports.map(\.stopMicroseconds), 50) }
    var stopP99: UInt64 { Percentile.of(reports.map(\.stopMicroseconds), 99) }
    var stageP50: UInt64 { Percentile.of(reports.map(\.stageMicroseconds), 50) }
    var stageP99: UInt64 { Percentile.of(reports.map(\.stageMicroseconds), 99) }
    var restP50: UInt64 { Percentile.of(reports.map(Self.rest), 50) }
    var restP99: UInt64 { Percentile.of(reports.map(Self.rest), 99) }

    /// The stage copy's speed, GB/s: every staged byte over the time its copies took.
    var stageGBps: Double {
        let bytes = reports.reduce(0) { $0 + $1.frames } * 4096
        let micros = reports.reduce(0) { $0 + $1.stageMicroseconds }
        return micros > 0 ? Double(bytes) / Double(micros) / 1_000 : 0
    }
    /// The stage copy and the sync's full copy against one `memcpy` of the whole memory.
    var stageRatio: Double { memcpyGBps > 0 ? stageGBps / memcpyGBps : 0 }
    var syncCopyRatio: Double { memcpyGBps > 0 ? fullCopyGBps / memcpyGBps : 0 }

    /// The slowest tenth of the pauses (at or above the 90th percentile) and, summed over them,
    /// their stage copies, the engine thread's run delay and faults, and their frames.
    var tailRows: [Row] {
        let p90 = Percentile.of(pauses, 90)
        return rows.filter { $0.pauseMicroseconds >= p90 }
    }
    var tailPauseMicroseconds: UInt64 { tailRows.reduce(0) { $0 + $1.pauseMicroseconds } }
    var tailStageMicroseconds: UInt64 { tailRows.reduce(0) { $0 + $1.stageMicroseconds } }
    var tailRunDelayMicroseconds: UInt64 { tailRows.reduce(0) { $0 + ($1.runDelayMicroseconds ?? 0) } }
    var tailFaults: Int { tailRows.reduce(0) { $0 + ($1.faults ?? 0) } }
    var tailFrames: Int { tailRows.reduce(0) { $0 + $1.frames } }

    /// A pause beyond its stop and any stage copy inside it: the harvest, the read-back's
    /// candidates, the marking of pending frames (copy-on-write), the resume.
    static func rest(_ r: EpochReport) -> UInt64 {
        r.pauseMicroseconds &- min(r.pauseMicroseconds, r.stopMicroseconds + stageInPause(r))
    }

    /// The stage copy's time when it was made inside the pause (0 when it followed the resume).
    static func stageInPause(_ r: EpochReport) -> UInt64 { r.framesCopiedInPause > 0 ? r.stageMicroseconds : 0 }

    /// 1 − `during` ÷ `baseline` (0 without a baseline).
    static func slowdown(baseline: Double, during: Double) -> Double {
        baseline > 0 ? 1 - during / baseline : 0
    }

    enum CodingKeys: String, CodingKey {
        case applier, standby, cpus, epochs, rows, cpu
        case nbdcopyMBps = "nbdcopy_mbps"
        case linkRatio = "link_ratio"
        case stageShare = "stage_share"
        case writerCopyShare = "writer_copy_share"
        case stageMicrosecondsPerFrame = "stage_us_per_frame"
        case runDelayP50 = "run_delay_p50_us"
        case runDelayP99 = "run_delay_p99_us"
        case tailEpochs = "tail_epochs"
        case tailPauseMicroseconds = "tail_pause_us"
        case tailStageMicroseconds = "tail_stage_us"
        case tailRunDelayMicroseconds = "tail_run_delay_us"
        case tailFaults = "tail_faults"
        case tailFrames = "tail_frames"
        case workloadRate = "workload_rate"
        case memcpyGBps = "memcpy_gbps"
        case stageGBps = "stage_gbps"
        case stageRatio = "stage_ratio"
        case syncCopyRatio = "sync_copy_ratio"
        case memoryBytes = "memory_bytes"
        case epochMicroseconds = "epoch_us"
        case stagingBytes = "staging_bytes"
        case targetMicroseconds = "target_us"
        case syncMicroseconds = "sync_us"
        case syncPasses = "sync_passes"
        case fullCopyGBps = "sync_full_copy_gbps"
        case syncEnd = "sync_pass_end"
        case syncBlackoutMicroseconds = "sync_blackout_us"
        case syncFinalFrames = "sync_final_frames"
        case syncMaxThrottlePercent = "sync_max_throttle_percent"
        case syncPassList = "sync_pass_list"
        case firstEpoch = "first_epoch"
        case windowMicroseconds = "window_us"
        case lastCommittedEpoch = "last_committed_epoch"
        case throttleChanges = "throttle_changes"
        case maxThrottlePercent = "max_throttle_percent"
        case dirtyLimitChanges = "dirty_limit_changes"
        case copyOnWrite = "copy_on_write"
        case lowestDirtyLimitFrames = "lowest_dirty_limit_frames"
        case baselineStoresPerSecond = "baseline_stores_per_s"
        case replicatingStoresPerSecond = "replicating_stores_per_s"
        case slowdown = "workload_slowdown"
        case pauseP50 = "pause_p50_us"
        case pauseP99 = "pause_p99_us"
        case pauseMax = "pause_max_us"
        case overTarget = "pauses_over_target"
        case stopP50 = "stop_p50_us"
        case stopP99 = "stop_p99_us"
        case stageP50 = "stage_p50_us"
        case stageP99 = "stage_p99_us"
        case restP50 = "harvest_resume_p50_us"
        case restP99 = "harvest_resume_p99_us"
        case lagP50 = "lag_p50_epochs"
        case lagP99 = "lag_p99_epochs"
        case framesP50 = "frames_p50"
        case framesP99 = "frames_p99"
        case commitP50 = "commit_p50_us"
        case commitP99 = "commit_p99_us"
        case linkMBps = "link_mbps"
        case epochsPerSecond = "epochs_per_s"
        case takeover
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(applier, forKey: .applier)
        try c.encodeIfPresent(standby, forKey: .standby)
        try c.encode(memoryBytes, forKey: .memoryBytes)
        try c.encode(cpus, forKey: .cpus)
        try c.encode(workloadRate, forKey: .workloadRate)
        try c.encode(epochMicroseconds, forKey: .epochMicroseconds)
        try c.encode(stagingBytes, forKey: .stagingBytes)
        try c.encode(targetMicroseconds, forKey: .targetMicroseconds)
        try c.encode(syncMicroseconds, forKey: .syncMicroseconds)
        try c.encode(syncPasses, forKey: .syncPasses)
        try c.encode(fullCopyGBps, forKey: .fullCopyGBps)
        try c.encode(syncEnd, forKey: .syncEnd)
        try c.encode(syncBlackoutMicroseconds, forKey: .syncBlackoutMicroseconds)
        try c.encode(syncFinalFrames, forKey: .syncFinalFrames)
        try c.encode(syncMaxThrottlePercent, forKey: .syncMaxThrottlePercent)
        try c.encode(syncPassList, forKey: .syncPassList)
        try c.encode(firstEpoch, forKey: .firstEpoch)
        try c.encode(windowMicroseconds, forKey: .windowMicroseconds)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(epochsPerSecond, forKey: .epochsPerSecond)
        try c.encode(lastCommittedEpoch, forKey: .lastCommittedEpoch)
        try c.encode(throttleChanges, forKey: .throttleChanges)
        try c.encode(maxThrottlePercent, forKey: .maxThrottlePercent)
        try c.encode(dirtyLimitChanges, forKey: .dirtyLimitChanges)
        try c.encode(copyOnWrite, forKey: .copyOnWrite)
        try c.encode(lowestDirtyLimitFrames, forKey: .lowestDirtyLimitFrames)
        try c.encode(baselineStoresPerSecond, forKey: .baselineStoresPerSecond)
        try c.encode(replicatingStoresPerSecond, forKey: .replicatingStoresPerSecond)
        try c.encode(slowdown, forKey: .slowdown)
        try c.encode(pauseP50, forKey: .pauseP50)
        try c.encode(pauseP99, forKey: .pauseP99)
        try c.encode(pauseMax, forKey: .pauseMax)
        try c.encode(overTarget, forKey: .overTarget)
        try c.encode(stopP50, forKey: .stopP50)
        try c.encode(stopP99, forKey: .stopP99)
        try c.encode(stageP50, forKey: .stageP50)
        try c.encode(stageP99, forKey: .stageP99)
        try c.encode(restP50, forKey: .restP50)
        try c.encode(restP99, forKey: .restP99)
        try c.encode(lagP50, forKey: .lagP50)
        try c.encode(lagP99, forKey: .lagP99)
        try c.encode(framesP50, forKey: .framesP50)
        try c.encode(framesP99, forKey: .framesP99)
        try c.encode(commitP50, forKey: .commitP50)
        try c.encode(commitP99, forKey: .commitP99)
        try c.encode(linkMBps, forKey: .linkMBps)
        try c.encode(nbdcopyMBps, forKey: .nbdcopyMBps)
        try c.encode(linkRatio, forKey: .linkRatio)
        try c.encode(stageShare, forKey: .stageShare)
        try c.encode(writerCopyShare, forKey: .writerCopyShare)
        try c.encode(stageMicrosecondsPerFrame, forKey: .stageMicrosecondsPerFrame)
        try c.encode(runDelayP50, forKey: .runDelayP50)
        try c.encode(runDelayP99, forKey: .runDelayP99)
        try c.encode(memcpyGBps, forKey: .memcpyGBps)
        try c.encode(stageGBps, forKey: .stageGBps)
        try c.encode(stageRatio, forKey: .stageRatio)
        try c.encode(syncCopyRatio, forKey: .syncCopyRatio)
        try c.encodeIfPresent(cpu, forKey: .cpu)
        try c.encodeIfPresent(takeover, forKey: .takeover)
        try c.encode(tailRows.count, forKey: .tailEpochs)
        try c.encode(tailPauseMicroseconds, forKey: .tailPauseMicroseconds)
        try c.encode(tailStageMicroseconds, forKey: .tailStageMicroseconds)
        try c.encode(tailRunDelayMicroseconds, forKey: .tailRunDelayMicroseconds)
        try c.encode(tailFaults, forKey: .tailFaults)
        try c.encode(tailFrames, forKey: .tailFrames)
        try c.encode(rows, forKey: .rows)
    }

    /// The table's lines.
    var lines: [String] {
        func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        var out = [
            "  epochs of a running machine, \(applier) putting them in place (\(ByteCount.format(memoryBytes)), \(cpus) "
                + "CPUs hot set at \(workloadRate) + DMA, epoch \(epochMicroseconds / 1_000) ms, staging "
                + "\(ByteCount.format(stagingBytes)), target \(targetMicroseconds) µs)"
        ]
        if let standby { out.append("    standby: \(standby)") }
        out += [
            "    sync: \(syncMicroseconds / 1_000) ms (\(syncPasses) passes, ended \(syncEnd), throttle max "
                + "\(f(syncMaxThrottlePercent, 0)) %, full copy \(f(fullCopyGBps, 2)) GB/s), final blackout "
                + "\(syncBlackoutMicroseconds) µs for \(syncFinalFrames) frames;",
            "      first epoch \(firstEpoch.frames) frames, pause \(firstEpoch.pauseMicroseconds) µs, commit "
                + "\(firstEpoch.commitMicroseconds) µs",
            "    \(epochs) epochs in \(f(Double(windowMicroseconds) / 1e6, 1)) s (\(f(epochsPerSecond, 1))/s), "
                + "throttle changes \(throttleChanges), max \(f(maxThrottlePercent, 0)) %; dirty limit changes "
                + "\(dirtyLimitChanges), lowest \(lowestDirtyLimitFrames) frames",
            "    pause µs: p50 \(pauseP50), p99 \(pauseP99), max \(pauseMax); over target \(overTarget) "
                + "(p99 ≤ \(targetMicroseconds): \(pauseP99 <= targetMicroseconds ? "met" : "missed"))",
            "      of it: stop p50 \(stopP50) / p99 \(stopP99), stage copy \(stageP50) / \(stageP99) "
                + "(\(f(stageShare * 100, 0)) % of all pause time, \(f(stageMicrosecondsPerFrame, 2)) µs a frame), "
                + "harvest+resume \(restP50) / \(restP99)",
            "      slowest tenth (\(tailRows.count) pauses, \(tailFrames) frames): \(tailPauseMicroseconds) µs paused, "
                + "\(tailStageMicroseconds) µs of it staging; engine thread runnable but not running "
                + "\(tailRunDelayMicroseconds) µs, \(tailFaults) page faults (to the next pause)",
            "      engine thread run delay a pause to the next: p50 \(runDelayP50) µs, p99 \(runDelayP99) µs",
            "    commit lag (epochs): p50 \(f(lagP50, 2)), p99 \(f(lagP99, 2)) "
                + "(p99 ≤ 2: \(lagP99 <= 2 ? "met" : "missed")); commit µs p50 \(commitP50), p99 \(commitP99)",
            "    epoch frames: p50 \(framesP50), p99 \(framesP99); link in commits \(f(linkMBps, 0)) MB/s, "
                + "nbdcopy \(f(nbdcopyMBps, 0)) MB/s (link_ratio \(f(linkRatio, 2)))",
            "    copies against memcpy \(f(memcpyGBps, 2)) GB/s (1 thread, same run): stage \(f(stageGBps, 2)) GB/s "
                + "(stage_ratio \(f(stageRatio, 2))), sync full copy sync_copy_ratio \(f(syncCopyRatio, 2))",
            "    workload: \(f(baselineStoresPerSecond / 1e6, 2)) M stores/s before the sync, "
                + "\(f(replicatingStoresPerSecond / 1e6, 2)) M/s replicating: slowdown \(f(slowdown * 100, 1)) %",
        ]
        if let c = cpu {
            out.append(
                "    CPUs in the window (the host has \(c.hostCPUs)): \(f(c.busy, 2)) busy; this process (machine's CPUs "
                    + "and DMA, engine, shipping) \(f(c.bench, 2)), standby \(f(c.standby, 2)), nbd-server "
                    + "\(f(c.server, 2)), others \(f(c.others, 2))")
        }
        if let t = takeover {
            let firstStore = t.firstStoreMicroseconds.map { "\(f(Double($0) / 1_000, 1)) ms" } ?? "none in 1 s"
            out.append(
                "    takeover (copy between commits, epoch \(t.epoch)): recover \(f(Double(t.recoverMicroseconds) / 1_000, 1)) ms "
                    + "(\(t.framesReplayed) frames replayed) + machine on the image "
                    + "\(f(Double(t.makeMachineMicroseconds) / 1_000, 1)) ms + CPUs started "
                    + "\(f(Double(t.startMicroseconds) / 1_000, 1)) ms = \(f(Double(t.totalMicroseconds) / 1_000, 1)) ms "
                    + "to CPUs running (≤ 100 ms: \(t.totalMicroseconds <= 100_000 ? "met" : "missed")); first store "
                    + firstStore)
            out.append(
                "      for comparison, recover + map and touch every page: \(t.touchTotalMicroseconds / 1_000) ms "
                    + "(mmap \(t.mmapMicroseconds) µs, then a read fault a page; with MAP_POPULATE "
                    + "\(t.populateMicroseconds / 1_000) ms)")
            out.append(
                "    after the clean stop: recover \(t.cleanStopRecoverMicroseconds / 1_000) ms "
                    + "(\(t.cleanStopFramesReplayed) frames replayed)")
        }
        return out
    }
}
