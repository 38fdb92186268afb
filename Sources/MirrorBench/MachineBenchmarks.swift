import CMirrorLinux
import CMirrorShims
import MirrorCore
import MirrorEmulation
import MirrordConfig
import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The measurements behind `mirrord-bench`, each paired with a baseline measured in the same
/// call on the same memory, so that a shared, noisy machine still gives honest ratios.
enum MachineBenchmarks {
    /// A configuration with no CPUs, no DMA and no MMU: a machine that only copies.
    static func quietConfiguration(bytes: Int) -> MirrordConfiguration {
        var config = MirrordConfiguration()
        config.machine.memorySize = bytes
        config.machine.workload.cpus = 0
        config.machine.workload.churn = 0
        config.machine.mmu.enabled = false
        config.machine.dma.rate = .limited(bytesPerSecond: 0)
        return config
    }

    /// The machine the blackout sections stop: 1 GiB running the default workload, small pages
    /// only (so that a store in the measuring window dirties one frame, not 512), started and
    /// run for 0.2 s; and an engine with the default policy. The caller shuts the machine down.
    static func blackoutMachine() throws -> (EmulatedMachine, DuplexEngine) {
        var config = MirrordConfiguration()
        config.machine.memorySize = 1 << 30
        config.machine.mmu.hugeShare = 0
        let machine = try MachineFactory.makeMachine(config)
        do {
            try machine.start()
        } catch {
            machine.shutdown()
            throw error
        }
        usleep(200_000)
        return (machine, DuplexEngine(hardware: machine, policy: config.policy))
    }

    /// The median of `values`.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// One glibc `memcpy` of the whole module (the baseline) against mirrord's full copy (the
    /// engine's own, on a quiet machine of the same size), alternated `rounds` times.
    /// Returns the median bandwidths in GB/s.
    static func fullCopy(bytes: Int, rounds: Int) throws(HardwareError) -> (memcpy: Double, fullCopy: Double) {
        let machine = try MachineFactory.makeMachine(quietConfiguration(bytes: bytes))
        let engine = DuplexEngine(hardware: machine, policy: DuplexPolicy())
        var memcpyRates: [Double] = []
        var copyRates: [Double] = []
        for _ in 0..<rounds {
            let start = MonotonicClock.nanoseconds()
            memcpy(machine.spare.base, machine.active.base, bytes)
            memcpyRates.append(Double(bytes) / Double(MonotonicClock.nanoseconds() - start))
            if let copy = engine.run().fullCopy { copyRates.append(copy.gigabytesPerSecond) }
        }
        return (median(memcpyRates), median(copyRates))
    }

    /// Microseconds per frame to copy `frames` frames chosen at random, one `memcpy` each: the
    /// per-frame cost in the blackout's floor.
    static func frameCopyMicroseconds(bytes: Int, frames: Int, seed: UInt64) throws(HardwareError) -> Double {
        let machine = try MachineFactory.makeMachine(quietConfiguration(bytes: bytes))
        var random = WyRandom(seed: seed)
        let frameCount = machine.geometry.frameCount
        let list = (0..<frames).map { _ in scaled(random.next(), frameCount) * 4096 }
        var results: [Double] = []
        for _ in 0..<5 {
            let start = MonotonicClock.nanoseconds()
            for offset in list { memcpy(machine.spare.base + offset, machine.active.base + offset, 4096) }
            results.append(Double(MonotonicClock.nanoseconds() - start) / 1_000 / Double(frames))
        }
        return median(results)
    }

    /// mirrord's harvest (get-and-clear of every frame through ``DuplexHardware/harvest``) of a
    /// module of `bytes` with `fraction` of its frames dirty, against the plain C get-and-clear
    /// over the same bitvector, `rounds` of each in turns. Returns the medians in microseconds per
    /// GiB tracked.
    static func harvest(bytes: Int, fraction: Double, rounds: Int, seed: UInt64) throws
        -> (mirrord: Double, baseline: Double)
    {
        let machine = try MachineFactory.makeMachine(quietConfiguration(bytes: bytes))
        try machine.startTracking()
        let frameCount = machine.geometry.frameCount
        var random = WyRandom(seed: seed)
        let dirty = (0..<max(1, Int(Double(frameCount) * fraction))).map { _ in scaled(random.next(), frameCount) }
        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: frameCount)
        defer { output.deallocate() }
        let perGiB = Double(1 << 30) / Double(bytes)
        let bitmap = machine.parts.bitmap
        let words = UnsafeMutableRawPointer(bitmap.words).assumingMemoryBound(to: UInt64.self)
        var ours: [Double] = []
        var theirs: [Double] = []
        // Taking turns at going first: at 0.1 % a harvest of 4 GiB takes ~12 µs, and whichever
        // always ran second would always find the other's lines in the caches.
        for round in 0..<(2 * rounds) {
            for frame in dirty { bitmap.markDirtyShared(frame) }
            let start = MonotonicClock.nanoseconds()
            if (round / 2 + round) % 2 == 0 {
                var scan = 0
                while scan < frameCount {
                    scan = try machine.harvest(frames: scan..<frameCount, flags: .getAndClear, into: output).scanEnd
                }
                ours.append(Double(MonotonicClock.nanoseconds() - start) / 1_000 * perGiB)
            } else {
                _ = mirrord_baseline_get_and_clear(words, bitmap.wordCount, output.baseAddress, frameCount)
                theirs.append(Double(MonotonicClock.nanoseconds() - start) / 1_000 * perGiB)
            }
        }
        return (median(ours), median(theirs))
    }

    /// The costs of one tracking backend on a quiet machine of `bytes`: arming tracking, a first
    /// store to a clean page (the store path, or the write fault), and a harvest (get-and-clear of
    /// every frame) with `fraction` of the frames written. Nil costs mean the backend failed,
    /// with the reason.
    struct BackendCosts: Sendable {
        /// Switching tracking on (write-protecting everything, for the real MMU).
        var armMicroseconds: Double
        /// One store to a clean page, averaged over the pages written.
        var firstStoreNanoseconds: Double
        /// One harvest of every frame (for `uffd`, the median of three paired with the baseline);
        /// nil when it failed.
        var harvestMicroseconds: Double?
        /// For `uffd`: the same pages written again and harvested by the raw C `PAGEMAP_SCAN`
        /// get-and-clear on the same mapping (the kernel's cost), in the same run (median of three).
        var baselineHarvestMicroseconds: Double?
        /// For `uffd`: the blackout's look, a get-only harvest of every frame through the machine ...
        var walkMicroseconds: Double?
        /// ... and the same walk by one raw C `PAGEMAP_SCAN` loop on one thread.
        var baselineWalkMicroseconds: Double?
        /// Why the harvest failed.
        var failure: String?
    }

    /// Measures ``BackendCosts`` for `backend` at each of `fractions`.
    static func backendCosts(
        _ backend: MirrordConfiguration.Backend, bytes: Int, fractions: [Double], seed: UInt64
    ) throws -> [BackendCosts] {
        var config = quietConfiguration(bytes: bytes)
        config.backend = backend
        let machine = try MachineFactory.makeMachine(config)
        let frameCount = machine.geometry.frameCount
        let output = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: frameCount)
        defer { output.deallocate() }
        // Touched before anything is timed, as the engine's reused frame list is: the first
        // harvest would otherwise pay the output's page faults and the baseline after it would not.
        output.initialize(repeating: 0)
        var results: [BackendCosts] = []
        var random = WyRandom(seed: seed)
        for fraction in fractions {
            var start = MonotonicClock.nanoseconds()
            try machine.startTracking()
            let arm = Double(MonotonicClock.nanoseconds() - start) / 1_000
            var pages = Set<Int>()
            let wanted = max(1, Int(Double(frameCount) * fraction))
            while pages.count < wanted { pages.insert(scaled(random.next(), frameCount)) }
            let list = Array(pages)
            let bitmap = machine.parts.bitmap
            start = MonotonicClock.nanoseconds()
            for page in list {
                machine.active.base.storeBytes(of: 1, toByteOffset: page * 4096, as: UInt8.self)
                if backend == .emulated { bitmap.markDirty(page, writer: 0) }
            }
            let store = Double(MonotonicClock.nanoseconds() - start) / Double(list.count)
            start = MonotonicClock.nanoseconds()
            do {
                _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: output)
                var costs = BackendCosts(
                    armMicroseconds: arm, firstStoreNanoseconds: store,
                    harvestMicroseconds: Double(MonotonicClock.nanoseconds() - start) / 1_000)
                if backend == .uffd {
                    (costs.harvestMicroseconds, costs.baselineHarvestMicroseconds) = harvestPairs(
                        machine, pages: list, output: output)
                    if costs.harvestMicroseconds == nil {
                        costs.failure = "a paired harvest did not report the pages written"
                    }
                    (costs.walkMicroseconds, costs.baselineWalkMicroseconds) = walks(
                        machine, pages: list, output: output)
                }
                results.append(costs)
            } catch {
                results.append(
                    BackendCosts(
                        armMicroseconds: arm, firstStoreNanoseconds: store, harvestMicroseconds: nil,
                        failure: "\(error)"))
            }
            machine.stopTracking()
        }
        return results
    }

    /// Three pairs of get-and-clear harvests of the whole module, each after `pages` were written
    /// again: mirrord's (through the machine) and the raw C `PAGEMAP_SCAN` loop on the same
    /// mapping; the medians in microseconds, nils if either failed.
    static func harvestPairs(_ machine: EmulatedMachine, pages: [Int], output: UnsafeMutableBufferPointer<UInt32>)
        -> (Double?, Double?)
    {
        let (start, end) = moduleAddresses(machine)
        var round = 0
        let rewrite = {
            round += 1
            for page in pages {
                machine.active.base.storeBytes(
                    of: UInt8(truncatingIfNeeded: round + 1), toByteOffset: page * 4096, as: UInt8.self)
            }
        }
        return withPagemap { pagemap in
            pairedMedians(pairs: 3, before: rewrite) {
                (try? machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: output))?.reported
                    == pages.count
            } baseline: {
                mirrord_pagemap_get_and_clear_baseline(pagemap, start, end, output.baseAddress, output.count)
                    == pages.count
            }
        }
    }

    /// Writes `pages` again and times the blackout's look (a get-only harvest of every frame
    /// through the machine) and the same walk by the raw C loop on one thread, five pairs; the
    /// medians in microseconds, nils if either failed.
    static func walks(_ machine: EmulatedMachine, pages: [Int], output: UnsafeMutableBufferPointer<UInt32>)
        -> (Double?, Double?)
    {
        for page in pages { machine.active.base.storeBytes(of: 3, toByteOffset: page * 4096, as: UInt8.self) }
        let (start, end) = moduleAddresses(machine)
        return withPagemap { pagemap in
            pairedMedians(pairs: 5) {
                (try? machine.harvest(frames: machine.geometry.allFrames, flags: .get, into: output))?.reported
                    == pages.count
            } baseline: {
                mirrord_pagemap_walk_baseline(pagemap, start, end) == pages.count
            }
        }
    }

    /// Times `ours` and `baseline` `pairs` times each, taking turns at going first (so that neither
    /// always finds the page tables in the cache), `before` run untimed ahead of each; the medians
    /// in microseconds, or nils as soon as one returns false (its result was wrong).
    static func pairedMedians(pairs: Int, before: () -> Void = {}, ours: () -> Bool, baseline: () -> Bool) -> (
        Double?, Double?
    ) {
        var timings: ([Double], [Double]) = ([], [])
        for round in 0..<(2 * pairs) {
            before()
            let oursNow = (round / 2 + round) % 2 == 0
            let began = MonotonicClock.nanoseconds()
            guard oursNow ? ours() : baseline() else { return (nil, nil) }
            let micros = Double(MonotonicClock.nanoseconds() - began) / 1_000
            if oursNow { timings.0.append(micros) } else { timings.1.append(micros) }
        }
        return (median(timings.0), median(timings.1))
    }

    /// `body` with `/proc/self/pagemap` open (for the raw C baselines); nils if it cannot be opened.
    static func withPagemap(_ body: (Int32) -> (Double?, Double?)) -> (Double?, Double?) {
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard pagemap >= 0 else { return (nil, nil) }
        defer { close(pagemap) }
        return body(pagemap)
    }

    /// The active module's first and end addresses, as `PAGEMAP_SCAN` takes them.
    static func moduleAddresses(_ machine: EmulatedMachine) -> (UInt64, UInt64) {
        let start = UInt64(UInt(bitPattern: machine.active.base))
        return (start, start + UInt64(machine.geometry.byteCount))
    }

    /// What transparent huge pages do to userfaultfd tracking, on anonymous memory of `bytes`
    /// with `fraction` of its pages written: 4 KiB pages, then huge pages. Nil when the kernel
    /// cannot run the probe.
    static func hugePages(bytes: Int, fraction: Double) -> (small: mirrord_thp_costs, huge: mirrord_thp_costs)? {
        var small = mirrord_thp_costs()
        var huge = mirrord_thp_costs()
        guard mirrord_thp_probe(bytes, 0, fraction, &small) == 0, mirrord_thp_probe(bytes, 1, fraction, &huge) == 0
        else {
            return nil
        }
        return (small, huge)
    }

    /// Marks `count` random frames dirty, as kernel writes would, for a blackout of known size;
    /// `each` then sees every frame marked.
    static func dirtyRandomFrames(
        _ machine: EmulatedMachine, count: Int, seed: UInt64, each: (Int) -> Void = { _ in }
    ) {
        var random = WyRandom(seed: seed)
        for _ in 0..<count {
            let frame = scaled(random.next(), machine.geometry.frameCount)
            machine.parts.tracker.trackPhysical(frame)
            each(frame)
        }
    }

    /// The resident set size of this process, in bytes (`VmRSS` of /proc/self/status).
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            if text.hasPrefix("VmRSS:") {
                let digits = text.filter(\.isNumber)
                return (Int(digits) ?? 0) * 1024
            }
        }
        return 0
    }
}
