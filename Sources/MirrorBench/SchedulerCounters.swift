#if canImport(Glibc)
import Glibc
#endif

/// What the kernel's scheduler counted for one thread, and for the whole machine the time the
/// host took its vCPUs: read before and after a blackout, they say where a long one's time went.
///
/// A thread's time splits into on its CPU (`/proc/…/schedstat`, first field), runnable but
/// waiting for a CPU another thread of this machine held (second field, the run delay), and
/// neither: asleep, or, on a virtual machine whose kernel accounts steal time
/// (`CONFIG_PARAVIRT_TIME_ACCOUNTING`, as here), running on a vCPU the host had taken away; that
/// time counts neither as run nor as waiting. `/proc/stat`'s steal column counts the host's share
/// for the whole machine, in clock ticks (10 ms): too coarse for one blackout, but it says whether
/// the host took anything at all in a sample's window.
struct SchedulerCounters: Sendable, Hashable {
    /// Nanoseconds on a CPU.
    var runNanoseconds: UInt64
    /// Nanoseconds runnable, waiting on a run queue.
    var waitNanoseconds: UInt64

    /// The calling thread's counters.
    static func currentThread() -> SchedulerCounters? { read("/proc/thread-self/schedstat") }

    /// The counters of thread `threadID` of this process.
    static func thread(_ threadID: Int32) -> SchedulerCounters? { read("/proc/self/task/\(threadID)/schedstat") }

    /// Every thread of this process but those of `excluded`, by kernel ID.
    static func processThreads(excluding excluded: Set<Int32>) -> [Int32: SchedulerCounters] {
        var counters: [Int32: SchedulerCounters] = [:]
        for id in directoryNumbers("/proc/self/task") where !excluded.contains(id) {
            counters[id] = thread(id)
        }
        return counters
    }

    /// Every task of every other process on this machine (kernel threads, the VM's agent, …) at
    /// the moment of the call, by path under `/proc` with its name: what may hold a core the
    /// engine waits for (here DAMON's `kdamond`, set up by the VM's platform to page out cold
    /// memory, runs for milliseconds at a time).
    static func otherTasks() -> [String: String] {
        let own = getpid()
        var tasks: [String: String] = [:]
        for process in directoryNumbers("/proc") where process != own {
            for task in directoryNumbers("/proc/\(process)/task") {
                let path = "/proc/\(process)/task/\(task)"
                if let comm = firstLine("\(path)/comm") { tasks[path] = String(comm) }
            }
        }
        return tasks
    }

    /// The counters of the tasks at `paths` (as ``otherTasks()`` names them), by path.
    static func tasks(_ paths: some Sequence<String>) -> [String: SchedulerCounters] {
        var counters: [String: SchedulerCounters] = [:]
        for path in paths { counters[path] = read("\(path)/schedstat") }
        return counters
    }

    /// The numeric entries of a directory under `/proc`.
    private static func directoryNumbers(_ path: String) -> [Int32] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var numbers: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let number = Int32(name) { numbers.append(number) }
        }
        return numbers
    }

    /// The run time the threads of `after` gained since `before` (threads in both): the sum,
    /// and the thread that gained most (its kernel ID and run time).
    static func runNanoseconds<Key: Hashable>(from before: [Key: SchedulerCounters], to after: [Key: SchedulerCounters])
        -> (sum: UInt64, most: (thread: Key, nanoseconds: UInt64)?)
    {
        var sum: UInt64 = 0
        var most: (thread: Key, nanoseconds: UInt64)?
        for (thread, counters) in after {
            guard let earlier = before[thread] else { continue }
            let ran = counters.since(earlier).runNanoseconds
            sum += ran
            if ran > (most?.nanoseconds ?? 0) { most = (thread, ran) }
        }
        return (sum, most)
    }

    /// The name of thread `threadID` of this process (`/proc/self/task/ID/comm`).
    static func threadName(_ threadID: Int32) -> String? {
        firstLine("/proc/self/task/\(threadID)/comm").map(String.init)
    }

    /// The counters in the schedstat file at `path` ("run wait slices"), nil when unreadable.
    private static func read(_ path: String) -> SchedulerCounters? {
        guard let fields = firstLine(path)?.split(separator: " "), fields.count >= 2,
            let run = UInt64(fields[0]), let wait = UInt64(fields[1])
        else { return nil }
        return SchedulerCounters(runNanoseconds: run, waitNanoseconds: wait)
    }

    /// The counters accumulated since `earlier`.
    func since(_ earlier: SchedulerCounters) -> SchedulerCounters {
        SchedulerCounters(
            runNanoseconds: runNanoseconds &- earlier.runNanoseconds,
            waitNanoseconds: waitNanoseconds &- earlier.waitNanoseconds)
    }

    /// The host's steal time over every CPU (`/proc/stat`, the first line's eighth number), in
    /// nanoseconds at the clock tick's resolution; nil when unreadable.
    static func hostStealNanoseconds() -> UInt64? {
        guard let line = firstLine("/proc/stat") else { return nil }
        let fields = line.split(separator: " ")
        guard fields.count > 8, fields[0] == "cpu", let ticks = UInt64(fields[8]) else { return nil }
        let perSecond = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        return ticks * (1_000_000_000 / perSecond)
    }

    /// The first line of a small file under `/proc`, read with one `read`.
    private static func firstLine(_ path: String) -> Substring? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        return text.split(separator: "\n", maxSplits: 1).first
    }
}
