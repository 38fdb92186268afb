import ArgumentParser
import Foundation
import MirrorCore
import MirrorEmulation

/// `mirrord bench`: measures mirrord's hot paths on this machine, in one run, as ratios to
/// baselines measured in the same run (the machines are shared and noisy).
///
/// Today it measures the CPU store path: nanoseconds per store with dirty tracking off and on,
/// without and with the emulated MMU (with tracking on, a harvest clears the dirty state every
/// 10 ms, as duplex passes do, so stores keep paying for re-dirtying frames).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the hot paths against baselines from the same run (release build).")

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .long, help: "Seconds to measure each case.")
    var seconds: Double = 1.0

    @Option(name: .long, help: "Size of each memory module.")
    var memory: String = "1GiB"

    func run() throws {
        guard let bytes = ByteCount.parse(memory), bytes % 4096 == 0, bytes > 0 else {
            throw ValidationError("--memory: \"\(memory)\" is not a size in whole 4KiB frames")
        }
        var store: [String: StoreResult] = [:]
        for mmu in [false, true] {
            let off = try measureStores(bytes: bytes, mmu: mmu, tracking: false)
            let on = try measureStores(bytes: bytes, mmu: mmu, tracking: true)
            store[mmu ? "mmu_on" : "mmu_off"] = StoreResult(offNanoseconds: off, onNanoseconds: on)
        }
        let report = BenchReport(machine: .current, memoryBytes: bytes, store: store)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }

    /// Nanoseconds per store of one CPU thread running the default hotset workload unthrottled.
    private func measureStores(bytes: Int, mmu: Bool, tracking: Bool) throws -> Double {
        var config = MirrordConfiguration()
        config.memory.size = bytes
        config.workload.cpus = 1
        config.workload.rate = .unlimited
        config.workload.churn = 0
        config.mmu.enabled = mmu
        config.dma.rate = .limited(bytesPerSecond: 0)
        let machine = try EmulatedMachine(configuration: config)
        defer { machine.shutdown() }
        machine.start()
        Thread.sleep(forTimeInterval: 0.3)  // warm up: fault pages in, fill caches
        let harvestBuffer = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { harvestBuffer.deallocate() }
        if tracking { try machine.startTracking() }
        let startStores = machine.storeCount
        let start = MonotonicClock.nanoseconds()
        let end = start + UInt64(seconds * 1e9)
        while MonotonicClock.nanoseconds() < end {
            Thread.sleep(forTimeInterval: 0.01)
            if tracking {
                _ = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: harvestBuffer)
            }
        }
        let stores = machine.storeCount - startStores
        let elapsed = MonotonicClock.nanoseconds() - start
        return stores > 0 ? Double(elapsed) / Double(stores) : .infinity
    }
}

/// The store-path figures of one configuration.
struct StoreResult: Encodable {
    var offNanoseconds: Double
    var onNanoseconds: Double
    var overhead: Double { onNanoseconds / offNanoseconds }

    enum CodingKeys: String, CodingKey {
        case offNanoseconds = "off_ns", onNanoseconds = "on_ns", overhead = "store_overhead"
    }

    init(offNanoseconds: Double, onNanoseconds: Double) {
        self.offNanoseconds = offNanoseconds
        self.onNanoseconds = onNanoseconds
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(offNanoseconds, forKey: .offNanoseconds)
        try c.encode(onNanoseconds, forKey: .onNanoseconds)
        try c.encode(overhead, forKey: .overhead)
    }
}

/// The machine a benchmark ran on, since these machines are shared.
struct MachineDescription: Encodable {
    var cores: Int
    var memoryBytes: UInt64
    var kernel: String
    var loadAverage: String

    enum CodingKeys: String, CodingKey {
        case cores, kernel, memoryBytes = "memory_bytes", loadAverage = "load_average"
    }

    static var current: MachineDescription {
        let info = ProcessInfo.processInfo
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        return MachineDescription(
            cores: info.activeProcessorCount, memoryBytes: info.physicalMemory,
            kernel: info.operatingSystemVersionString, loadAverage: load)
    }
}

/// Everything one `mirrord bench` run measured.
struct BenchReport: Encodable {
    var machine: MachineDescription
    var memoryBytes: Int
    var store: [String: StoreResult]

    enum CodingKeys: String, CodingKey {
        case machine, store, memoryBytes = "memory_bytes"
    }

    var table: String {
        var lines = [
            "mirrord bench on \(machine.cores) cores, \(machine.memoryBytes >> 30) GiB, load \(machine.loadAverage), modules of \(ByteCount.format(memoryBytes))",
            "store path (ns per 64 B store, one CPU, hotset)   tracking off   tracking on   on/off",
        ]
        for key in ["mmu_off", "mmu_on"] {
            guard let r = store[key] else { continue }
            let name = key == "mmu_off" ? "  without the MMU (frame bitmap)" : "  with the MMU (page tables, TLB)"
            lines.append(name.padding(toLength: 52, withPad: " ", startingAt: 0)
                + String(format: "%8.1f      %8.1f     %5.2f", r.offNanoseconds, r.onNanoseconds, r.overhead))
        }
        return lines.joined(separator: "\n")
    }
}
