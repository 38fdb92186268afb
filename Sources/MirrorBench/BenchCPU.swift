import Foundation

/// CPU time so far, in clock ticks, from `/proc`: the host's (busy and all), this process's, the
/// standby's and the local `nbd-server`'s (its process group: the daemon and the child serving
/// each client). Two samples give where the host's CPUs went between them (``CPUShare``).
struct CPUSample: Sendable {
    var hostBusyTicks: UInt64 = 0
    var hostTotalTicks: UInt64 = 0
    var benchTicks: UInt64 = 0
    var standbyTicks: UInt64 = 0
    var serverTicks: UInt64 = 0

    /// Now; `standby` and `serverGroup` are PIDs (nil: not measured).
    static func now(standby: pid_t?, serverGroup: pid_t?) -> CPUSample {
        var sample = CPUSample()
        if let text = read("/proc/stat"), let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") {
            let ticks = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            if ticks.count >= 8 {
                // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
                sample.hostTotalTicks = ticks[0..<8].reduce(0, +)
                sample.hostBusyTicks = sample.hostTotalTicks - ticks[3] - ticks[4]
            }
        }
        sample.benchTicks = process("/proc/self/stat")?.ticks ?? 0
        if let standby { sample.standbyTicks = process("/proc/\(standby)/stat")?.ticks ?? 0 }
        if let serverGroup, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for entry in entries where entry.first?.isNumber == true {
                if let stat = process("/proc/\(entry)/stat"), stat.group == serverGroup {
                    sample.serverTicks += stat.ticks
                }
            }
        }
        return sample
    }

    /// A process's user and system ticks and its process group, from its `stat`.
    private static func process(_ path: String) -> (ticks: UInt64, group: pid_t)? {
        // After the command's closing parenthesis: state, ppid, pgrp, … utime (14th), stime (15th).
        guard let text = read(path), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let group = pid_t(fields[2]), let user = UInt64(fields[11]),
            let system = UInt64(fields[12])
        else { return nil }
        return (user + system, group)
    }

    private static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Where the host's CPUs went from one sample to another, in CPUs (CPU-seconds a second).
struct CPUShare: Encodable, Sendable {
    /// The host's CPUs, and how many of them were busy.
    let hostCPUs: Int
    let busy: Double
    /// This process (the machine's CPUs and DMA, the engine, the shipping thread), the standby
    /// process, the local `nbd-server`, and everything else (other work on the host, the kernel's).
    let bench: Double
    let standby: Double
    let server: Double
    var others: Double { max(0, busy - bench - standby - server) }

    /// From `start` to `end`, over `nanoseconds`.
    init(from start: CPUSample, to end: CPUSample, nanoseconds: UInt64) {
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let seconds = max(1e-9, Double(nanoseconds) / 1e9)
        func cpus(_ ticks: UInt64) -> Double { Double(ticks) / ticksPerSecond / seconds }
        hostCPUs = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let total = end.hostTotalTicks &- start.hostTotalTicks
        busy = total > 0 ? Double(end.hostBusyTicks &- start.hostBusyTicks) / Double(total) * Double(hostCPUs) : 0
        bench = cpus(end.benchTicks &- start.benchTicks)
        standby = cpus(end.standbyTicks &- start.standbyTicks)
        server = cpus(end.serverTicks &- start.serverTicks)
    }

    enum CodingKeys: String, CodingKey {
        case busy, bench, standby, others
        case hostCPUs = "host_cpus"
        case server = "nbd_server"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hostCPUs, forKey: .hostCPUs)
        try c.encode(busy, forKey: .busy)
        try c.encode(bench, forKey: .bench)
        try c.encode(standby, forKey: .standby)
        try c.encode(server, forKey: .server)
        try c.encode(others, forKey: .others)
    }
}
