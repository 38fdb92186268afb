import CMirrorShims
import MirrorCore
import MirrordConfig

#if canImport(Glibc)
import Glibc
#endif

/// The check before any allocation: do two modules and their bookkeeping fit in what this host and
/// this process may have? Without it, a machine too large is OOM-killed with no message (or, far
/// too large, spends minutes allocating first). The run and `--check-config` ask the same question.
struct MemoryAdmission {
    /// What the host and the process's limits give.
    struct Host: Sendable, Hashable {
        /// `MemAvailable` of `/proc/meminfo` in bytes, or the machine's total memory where
        /// `/proc/meminfo` cannot be read (a unit with `ProcSubset=pid`).
        var memoryAvailable: Int?
        /// Which of the two ``memoryAvailable`` is, as a message names it.
        var memorySource = "MemAvailable"
        /// What the memory cgroup still allows (its limit less its use, the tightest on the path
        /// up), and where that limit is set.
        var cgroupAvailable: CgroupRoom?
        /// `RLIMIT_AS`, when set.
        var addressSpaceLimit: Int?
        /// Threads this process may have under `RLIMIT_NPROC` (which counts every thread of the
        /// user): the limit less the user's threads in other processes; nil when not enforced
        /// (root) or not set.
        var threadLimit: Int?
        /// Threads this process may have under its pids cgroup (`pids.max`, systemd's
        /// `TasksMax=`, which counts every task of the cgroup): the tightest room on the path up
        /// plus this process's own threads; nil when no limit is set.
        var taskLimit: TaskRoom?
        /// This process's threads now (`Threads:` of `/proc/self/status`).
        var ownThreads = 1

        /// The tighter of ``threadLimit`` and ``taskLimit``, and who sets it and how, as a
        /// message says them: "but \(who) \(limit) (\(how))".
        var threads: (limit: Int, who: String, how: String)? {
            let nproc = threadLimit.map { ($0, "this user may have", "RLIMIT_NPROC: ulimit -u, LimitNPROC=") }
            let tasks = taskLimit.map { ($0.threads, "its pids cgroup allows", "\($0.limit); TasksMax=") }
            switch (nproc, tasks) {
            case (let n?, let t?): return n.0 <= t.0 ? n : t
            case (let n, let t): return n ?? t
            }
        }
    }

    /// Room left under a pids cgroup's limit.
    struct TaskRoom: Sendable, Hashable {
        /// Threads this process may have: its own and those the cgroup may still add.
        var threads: Int
        /// Where the limit is set (`…/pids.max = 6`).
        var limit: String
    }

    /// Room left under a cgroup's limit: bytes under a memory cgroup's, tasks under a pids cgroup's.
    struct CgroupRoom: Sendable, Hashable {
        /// What the cgroup may still charge, in its own unit.
        var left: Int
        /// Where the limit is set, as a message shows it (`…/memory.max = 400.0 MiB`).
        var limit: String
    }

    /// The machine does not fit; the description is the one line an operator reads.
    struct Refusal: Error, CustomStringConvertible, Equatable {
        var description: String
    }

    /// Bookkeeping beyond the modules: the tracking bitmaps, the emulated page tables, the
    /// harvest vectors (measured at ≤ 0.25 % of the modules by `mirrord-bench`), with room to
    /// spare, plus the runtime.
    static func bookkeeping(_ moduleBytes: Int) -> Int { moduleBytes / 100 + (64 << 20) }
    /// Address space beyond the mappings of the modules: code, stacks, heap.
    static let otherAddressSpace = 512 << 20
    /// Threads the service adds beside the CPUs and the DMA engine: its engine thread and the copy
    /// helper.
    static let serviceThreads = 2
    /// Room for the threads the Swift runtime's pool may still add (its event manager, workers).
    static let runtimeMargin = 4
    /// The fewest threads any machine needs: one CPU, the service's, and the runtime's margin.
    static let minimumThreads = 1 + serviceThreads + runtimeMargin

    /// The check before anything else runs: the Swift runtime's own thread pool needs a few
    /// threads, and where it cannot create one it retries forever; so a thread limit too low for
    /// any machine is refused first, while only the main thread runs.
    static func startupRefusal(on host: Host = .current()) -> Refusal? {
        let needed = minimumThreads + host.ownThreads
        guard let (limit, who, how) = host.threads, limit < needed else { return nil }
        return Refusal(description: "mirrord needs at least \(needed) threads, but \(who) \(max(0, limit)) (\(how))")
    }

    /// Whether `configuration` fits on `host`; nil when it does, else why not.
    static func check(_ configuration: MirrordConfiguration, on host: Host) -> Refusal? {
        let machine = configuration.machine
        let size = machine.memorySize
        // File-backed modules live in the page cache and are written back under pressure; their
        // space is reserved on disk when they are created.
        let resident = (machine.backing == .anonymous ? 2 * size : 0) + bookkeeping(size)
        let what =
            "memory.size = \(ByteCount.format(size)) needs about \(approximate(resident)) of memory"
            + (machine.backing == .anonymous
                ? " (two modules and their bookkeeping)" : " (bookkeeping beside the image files)")
        if let available = host.memoryAvailable, resident > available {
            return Refusal(
                description: "\(what), but the machine has \(approximate(available)) available (\(host.memorySource))")
        }
        if let cgroup = host.cgroupAvailable, resident > cgroup.left {
            return Refusal(
                description: "\(what), but the memory cgroup allows \(approximate(cgroup.left)) more (\(cgroup.limit))")
        }
        let mappings = (configuration.backend.usesRealMMU ? 3 : 2) * size
        if let limit = host.addressSpaceLimit, mappings + otherAddressSpace > limit {
            return Refusal(
                description:
                    "memory.size = \(ByteCount.format(size)) needs about \(approximate(mappings + otherAddressSpace)) of address space, but the process may have \(approximate(limit)) (RLIMIT_AS: ulimit -v, LimitAS=)"
            )
        }
        let threads = machine.writerCount + serviceThreads + runtimeMargin + host.ownThreads
        if let (limit, who, how) = host.threads, threads > limit {
            return Refusal(
                description: "\(machine.workload.cpus) CPUs need about \(threads) threads, but \(who) \(limit) (\(how))"
            )
        }
        return nil
    }

    /// `bytes` in the largest binary unit that leaves a number of at least 1, one decimal.
    static func approximate(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(format(value, unit == 0 ? 0 : 1)) \(units[unit])"
    }
}

extension MemoryAdmission.Host {
    /// What this host and process give, read from `/proc` and the cgroup file system.
    static func current() -> MemoryAdmission.Host {
        var host = MemoryAdmission.Host()
        if let available = meminfo("MemAvailable") {
            host.memoryAvailable = available
        } else {
            // The unit's ProcSubset=pid hides /proc/meminfo; sysinfo(2) still gives the total.
            let total = mirrord_total_memory()
            if total > 0 {
                host.memoryAvailable = Int(total)
                host.memorySource = "total memory; /proc/meminfo is hidden here"
            }
        }
        host.cgroupAvailable = cgroupRoom(
            v2Files: ("memory.max", "memory.current"), v1Controller: "memory",
            v1Files: ("memory.limit_in_bytes", "memory.usage_in_bytes"), counts: false)
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0 && limit.rlim_cur != rlim_t.max {
            host.addressSpaceLimit = Int(limit.rlim_cur)
        }
        if geteuid() != 0, getrlimit(__rlimit_resource_t(__RLIMIT_NPROC.rawValue), &limit) == 0,
            limit.rlim_cur != rlim_t.max
        {
            host.threadLimit = Int(limit.rlim_cur) - threadsOfThisUserElsewhere()
        }
        if let status = readSmallFile("/proc/self/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }),
            let count = Int(line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last ?? "")
        {
            host.ownThreads = count
        }
        if let room = cgroupRoom(
            v2Files: ("pids.max", "pids.current"), v1Controller: "pids",
            v1Files: ("pids.max", "pids.current"), counts: true)
        {
            host.taskLimit = .init(threads: room.left + host.ownThreads, limit: room.limit)
        }
        return host
    }

    /// The threads of this process's user in other processes (those `/proc` shows).
    private static func threadsOfThisUserElsewhere() -> Int {
        guard let dir = opendir("/proc") else { return 0 }
        defer { closedir(dir) }
        let me = getpid()
        let uid = "\(geteuid())"
        var threads = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != me, let status = readSmallFile("/proc/\(name)/status") else { continue }
            var owned = false
            var count = 0
            for line in status.split(separator: "\n") {
                if line.hasPrefix("Uid:") {
                    owned = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first == Substring(uid)
                }
                if line.hasPrefix("Threads:") {
                    count = Int(line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last ?? "") ?? 0
                }
            }
            if owned { threads += count }
        }
        return threads
    }

    /// A `Key: N kB` line of `/proc/meminfo`, in bytes.
    private static func meminfo(_ key: String) -> Int? {
        guard let text = readSmallFile("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
        return nil
    }

    /// The path of this process's cgroup for `controller` ("" for the unified hierarchy).
    private static func cgroupPath(controller: String) -> String? {
        guard let text = readSmallFile("/proc/self/cgroup") else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if controller.isEmpty
                ? parts[0] == "0" && parts[1].isEmpty : parts[1].split(separator: ",").contains(Substring(controller))
            {
                return String(parts[2])
            }
        }
        return nil
    }

    /// The tightest room (limit − usage) from this process's cgroup up: under cgroup v2 from
    /// `v2Files`, else under the v1 controller `v1Controller` from `v1Files`; `counts` when the
    /// files count tasks rather than bytes (how a message shows the limit).
    private static func cgroupRoom(
        v2Files: (limit: String, usage: String), v1Controller: String, v1Files: (limit: String, usage: String),
        counts: Bool
    ) -> MemoryAdmission.CgroupRoom? {
        if let path = cgroupPath(controller: "") {
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                if let found = tightest(
                    root: root, path: path, limitFile: v2Files.limit, usageFile: v2Files.usage, counts: counts)
                {
                    return found
                }
            }
        }
        guard let path = cgroupPath(controller: v1Controller) else { return nil }
        return tightest(
            root: "/sys/fs/cgroup/\(v1Controller)", path: path, limitFile: v1Files.limit, usageFile: v1Files.usage,
            counts: counts)
    }

    /// Walks from `root + path` up to `root`; in a container the cgroup file system may show
    /// only the container's own part, so `root` itself is looked at too.
    private static func tightest(root: String, path: String, limitFile: String, usageFile: String, counts: Bool)
        -> MemoryAdmission.CgroupRoom?
    {
        var best: MemoryAdmission.CgroupRoom?
        var components = path.split(separator: "/").map(String.init)
        while true {
            let dir = ([root] + components).joined(separator: "/")
            if let limitText = readSmallFile(dir + "/" + limitFile),
                let usageText = readSmallFile(dir + "/" + usageFile),
                let limit = Int(limitText.split(separator: "\n").first ?? ""), limit < 1 << 60,
                let usage = Int(usageText.split(separator: "\n").first ?? "")
            {
                let left = max(0, limit - usage)
                if best == nil || left < best!.left {
                    best = .init(left: left, limit: "\(dir)/\(limitFile) = \(counts ? "\(limit)" : approximate(limit))")
                }
            }
            if components.isEmpty { return best }
            components.removeLast()
        }
    }

    private static func approximate(_ bytes: Int) -> String { MemoryAdmission.approximate(bytes) }

    /// A small file of `/proc` or `/sys`, or nil when it cannot be read.
    private static func readSmallFile(_ path: String) -> String? {
        try? RegularFile.readText(path, limit: 1 << 16, what: "a /proc or /sys file")
    }
}
