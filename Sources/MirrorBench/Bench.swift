import Foundation
import MirrorCore
import MirrorEmulation
import MirrorLinux
import MirrordConfig
import MirrordService

/// `mirrord-bench`: holds mirrord's hot paths against the physical limits of this machine, every
/// figure a ratio to a baseline measured in the same run (these machines are shared and noisy):
/// full copy against one glibc `memcpy`, harvest against a plain C bitmap get-and-clear, blackout
/// against stop latency plus a per-frame copy, CPU stores with tracking on against off, and the
/// duplex time and memory from 1 to 8 GiB.
package struct Bench: Sendable {
    /// The sections a run can be limited to, in the order they run.
    package static let sections = [
        "copy", "harvest", "blackout", "tail", "store", "scaling", "backends", "convergence", "remote",
    ]

    /// Print one JSON object instead of a table.
    package var json = false
    /// Seconds to measure each store-path case.
    package var seconds = 1.0
    /// Module sizes for the copy benchmark.
    package var copySizes = ["1GiB", "4GiB"]
    /// Module sizes for the scaling runs.
    package var scalingSizes = ["1GiB", "2GiB", "4GiB", "8GiB"]
    /// Run only these sections (empty: all).
    package var only: [String] = []
    /// Blackouts of each size the tail section takes.
    package var tailSamples = 1_000
    /// Where to write the tail section's distribution as an SVG.
    package var tailSVG: String?
    /// Where to write the convergence of the 1 GiB duplex as an SVG.
    package var svg: String?
    /// Module sizes for the convergence section.
    package var convergenceSizes = ["1GiB", "4GiB"]
    /// The lackey trace the convergence section replays (nil: one of `xz -6`, made once).
    package var trace: String?
    /// Where to write the convergence section's blackouts and slowdowns per policy as an SVG.
    package var policySVG: String?
    /// The export the remote section writes to (nil: a local `nbd-server` it starts).
    package var remoteExport: String?
    /// Memory the remote section copies.
    package var remoteSize = "1GiB"
    /// Frames in the remote section's epochs, one row each.
    package var remoteEpochFrames = [256, 1_024, 4_096]
    /// Epochs committed of each size.
    package var remoteCommits = 50
    /// Seconds the remote section replicates a running machine for.
    package var remoteSeconds = 5.0
    /// The workload's rate in the remote section's running machine (nil: the default's).
    package var remoteRate: String?

    /// A bench with the defaults: every section.
    package init() {}

    /// Why a bench cannot run as asked.
    package struct InvalidRequest: Error, CustomStringConvertible {
        /// What is wrong.
        package var description: String
    }

    /// Checks the request: known sections, sizes in whole frames.
    package func validate() throws(InvalidRequest) {
        if let unknown = only.first(where: { !Self.sections.contains($0) }) {
            throw InvalidRequest(
                description: "--only: unknown section \"\(unknown)\" (\(Self.sections.joined(separator: ", ")))")
        }
        for (section, sizes) in [
            ("copy", copySizes), ("scaling", scalingSizes), ("convergence", convergenceSizes), ("remote", [remoteSize]),
        ]
        where wanted(section) {
            for text in sizes { _ = try size(text) }
        }
        if wanted("tail") && !(1...100_000).contains(tailSamples) {
            throw InvalidRequest(description: "--tail-samples: \(tailSamples) is not between 1 and 100000")
        }
        if wanted("remote") && !(remoteSeconds > 0 && remoteSeconds <= 3_600) {
            throw InvalidRequest(description: "--remote-seconds: \(remoteSeconds) is not between 0 and 3600 seconds")
        }
        if wanted("remote"), let remoteRate, ByteRate.parse(remoteRate) == nil {
            throw InvalidRequest(
                description: "--remote-rate: \"\(remoteRate)\" is not a rate (\"8MiB/s\", \"unlimited\")")
        }
    }

    private func wanted(_ section: String) -> Bool { only.isEmpty || only.contains(section) }

    /// Runs the sections asked for and prints the report (a table, or JSON).
    package func run() throws {
        let copy = wanted("copy") ? try copySizes.map { try measureCopy(bytes: size($0)) } : []
        let frameCopy = try MachineBenchmarks.frameCopyMicroseconds(bytes: 1 << 30, frames: 16_384, seed: 3)
        let harvest: [HarvestBench] =
            !wanted("harvest")
            ? []
            : try [0.001, 0.01, 0.1].map { fraction in
                let (ours, baseline) = try MachineBenchmarks.harvest(
                    bytes: 4 << 30, fraction: fraction, rounds: 21, seed: 5)
                return HarvestBench(
                    dirtyFraction: fraction, microsecondsPerGiB: ours, baselineMicrosecondsPerGiB: baseline)
            }
        let blackout: [BlackoutResult] =
            !wanted("blackout")
            ? [] : try [256, 1_024, 16_384].map { try measureBlackout(frames: $0, frameCopy: frameCopy) }
        let tail = wanted("tail") ? try TailBench(samplesPerSize: tailSamples).measure() : nil
        if let tailSVG, let tail {
            try TailPlot(result: tail).svg.write(toFile: tailSVG, atomically: true, encoding: .utf8)
        }
        let store = wanted("store") ? try measureStores(mmu: false) : nil
        let storeMMU = wanted("store") ? try measureStores(mmu: true) : nil
        var convergence: DuplexSummary?
        let scaling: [ScalingResult] =
            !wanted("scaling")
            ? []
            : try scalingSizes.map { text -> ScalingResult in
                let (result, summary) = try measureScaling(bytes: size(text))
                if convergence == nil { convergence = summary }
                return result
            }
        let backends = wanted("backends") ? try measureBackends() : []
        let backendDuplexes = wanted("backends") ? try measureBackendDuplexes() : []
        let hugePages = wanted("backends") && runs(.uffd) ? measureHugePages() : []
        if let svg, let convergence {
            try ConvergencePlot(summary: convergence).svg.write(toFile: svg, atomically: true, encoding: .utf8)
        }
        var policies: [ConvergenceResult] = []
        if wanted("convergence") {
            let workloads = ConvergenceBench.workloads(trace: trace ?? ConvergenceBench.xzTrace())
            for text in convergenceSizes {
                for workload in workloads { policies += try ConvergenceBench.measure(workload, bytes: try size(text)) }
            }
            if let policySVG {
                try PolicyPlot(results: policies).svg.write(toFile: policySVG, atomically: true, encoding: .utf8)
            }
        }
        var remote =
            wanted("remote")
            ? try RemoteBench.measure(
                uri: remoteExport, bytes: size(remoteSize), epochFrames: remoteEpochFrames, commits: remoteCommits)
            : nil
        if let link = remote?.nbdcopyMBps {
            remote?.replications = try ReplicationBench.measure(
                uri: remoteExport, bytes: size(remoteSize), seconds: remoteSeconds,
                rate: remoteRate.flatMap(ByteRate.parse), nbdcopyMBps: link)
        }
        let report = BenchReport(
            machine: .current, copy: copy, frameCopyMicroseconds: frameCopy, harvest: harvest, blackout: blackout,
            tail: tail, store: store, storeWithMMU: storeMMU, scaling: scaling, backends: backends,
            backendDuplexes: backendDuplexes, hugePages: hugePages,
            convergence: policies, remote: remote)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }

    private func size(_ text: String) throws(InvalidRequest) -> Int {
        guard let bytes = ByteCount.parse(text), bytes > 0, bytes % 4096 == 0 else {
            throw InvalidRequest(description: "\"\(text)\" is not a size in whole 4KiB frames")
        }
        return bytes
    }

    private func measureCopy(bytes: Int) throws -> CopyResult {
        let (memcpy, fullCopy) = try MachineBenchmarks.fullCopy(bytes: bytes, rounds: 3)
        return CopyResult(memoryBytes: bytes, memcpyGBps: memcpy, fullCopyGBps: fullCopy)
    }

    /// A blackout with `frames` frames dirty, on a 1 GiB machine running the default workload
    /// (small pages only, so that a store in the measuring window dirties one frame, not 512):
    /// the engine's own blackout code, five times, the median by duration.
    private func measureBlackout(frames: Int, frameCopy: Double) throws -> BlackoutResult {
        let (machine, engine) = try MachineBenchmarks.blackoutMachine()
        defer { machine.shutdown() }
        let all = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { all.deallocate() }
        var runs: [DuplexSummary.Blackout] = []
        for round in 0..<5 {
            try machine.startTracking()
            _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .clear, into: all)
            MachineBenchmarks.dirtyRandomFrames(machine, count: frames, seed: UInt64(round))
            runs.append(try engine.measureBlackout())
            machine.stopTracking()
            Thread.sleep(forTimeInterval: 0.02)
        }
        let chosen = runs.sorted { $0.durationMicroseconds < $1.durationMicroseconds }[runs.count / 2]
        return BlackoutResult(record: chosen, frameCopyMicroseconds: frameCopy)
    }

    /// Nanoseconds per store of one CPU thread running the default hotset workload unthrottled,
    /// with tracking off and on in alternating rounds on one machine (so that both see the same
    /// memory and the same moment's host speed); with tracking on, a harvest clears the dirty
    /// state every 10 ms, as duplex passes do.
    private func measureStores(mmu: Bool) throws -> StorePair {
        var options = EmulatedMachine.Options()
        options.workload.cpus = 1
        options.workload.rate = .unlimited
        options.workload.churn = 0
        options.mmu.enabled = mmu
        options.dma.rate = .limited(bytesPerSecond: 0)
        let machine = try EmulatedMachine(options: options)
        defer { machine.shutdown() }
        try machine.start()
        Thread.sleep(forTimeInterval: 0.3)
        let buffer = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { buffer.deallocate() }
        // Copy-on-write armed with nothing pending: every store pays the check (frame bitmap only).
        let copyOnWrite = machine.copyOnWriteStaging
        func round(tracking: Bool, armed: Bool = false) throws -> Double {
            if tracking { try machine.startTracking() }
            if armed { copyOnWrite?.armIdle() }
            defer {
                if armed { copyOnWrite?.disarm() }
                if tracking { machine.stopTracking() }
            }
            let startStores = machine.storeCount
            let start = MonotonicClock.nanoseconds()
            let end = start + UInt64(seconds / Double(StorePair.rounds) * 1e9)
            while MonotonicClock.nanoseconds() < end {
                Thread.sleep(forTimeInterval: 0.01)
                if tracking {
                    _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: buffer)
                }
            }
            let stores = machine.storeCount - startStores
            return stores > 0 ? Double(MonotonicClock.nanoseconds() - start) / Double(stores) : .infinity
        }
        var off: [Double] = []
        var on: [Double] = []
        var armed: [Double] = []
        for _ in 0..<StorePair.rounds {
            off.append(try round(tracking: false))
            on.append(try round(tracking: true))
            if copyOnWrite != nil { armed.append(try round(tracking: true, armed: true)) }
        }
        return StorePair(off: off, on: on, armed: armed)
    }

    /// The tracking backends side by side: arm, first store, harvest, at 1 and 4 GiB and 0.1, 1
    /// and 10 % of frames written. Backends this kernel cannot run are left out.
    private func measureBackends() throws -> [BackendResult] {
        var results: [BackendResult] = []
        for backend in MirrordConfiguration.Backend.allCases where runs(backend) {
            for bytes in [1 << 30, 4 << 30] {
                let fractions = [0.001, 0.01, 0.1]
                let costs = try MachineBenchmarks.backendCosts(backend, bytes: bytes, fractions: fractions, seed: 11)
                for (fraction, cost) in zip(fractions, costs) {
                    results.append(
                        BackendResult(
                            backend: backend.rawValue, memoryBytes: bytes, dirtyFraction: fraction, costs: cost))
                }
            }
        }
        return results
    }

    /// Three default 1 GiB duplexes on each backend, taking turns (the emulated MMU off, so the
    /// workload is the same).
    private func measureBackendDuplexes() throws -> [BackendDuplexResult] {
        let backends = MirrordConfiguration.Backend.allCases.filter(runs)
        return try (0..<3).flatMap { _ in
            try backends.map { backend in
                var config = MirrordConfiguration()
                config.backend = backend
                config.machine.mmu.enabled = false
                config.machine.workload.churn = 0
                let machine = try MachineFactory.makeMachine(config)
                defer { machine.shutdown() }
                try machine.start()
                return BackendDuplexResult(summary: DuplexEngine(hardware: machine, policy: config.policy).run())
            }
        }
    }

    /// Transparent huge pages under userfaultfd write-protect, 4 KiB against huge, 1 GiB of
    /// anonymous memory with 0.1 and 1 % of its pages written.
    private func measureHugePages() -> [HugePageResult] {
        [0.001, 0.01].flatMap { fraction -> [HugePageResult] in
            guard let (small, huge) = MachineBenchmarks.hugePages(bytes: 1 << 30, fraction: fraction) else { return [] }
            return [
                HugePageResult(memoryBytes: 1 << 30, dirtyFraction: fraction, huge: false, costs: small),
                HugePageResult(memoryBytes: 1 << 30, dirtyFraction: fraction, huge: true, costs: huge),
            ]
        }
    }

    private func runs(_ backend: MirrordConfiguration.Backend) -> Bool {
        guard backend == .uffd else { return true }
        if case .success = RealMMUProbe.check() { return true }
        return false
    }

    /// One duplex of the default workload shape on modules of `bytes`.
    private func measureScaling(bytes: Int) throws -> (ScalingResult, DuplexSummary) {
        var config = MirrordConfiguration()
        config.machine.memorySize = bytes
        let before = MachineBenchmarks.residentBytes()
        let machine = try MachineFactory.makeMachine(config)
        defer { machine.shutdown() }
        try machine.start()
        let summary = DuplexEngine(hardware: machine, policy: config.policy).run()
        let resident = MachineBenchmarks.residentBytes() - before
        return (ScalingResult(memoryBytes: bytes, summary: summary, residentBytes: resident), summary)
    }
}
