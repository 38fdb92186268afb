import Foundation
import MirrorCore
import MirrorEmulation
import MirrordConfig
import Testing

@testable import MirrordService

@Suite("Admission and the state directory: refused before anything is allocated or overwritten")
struct AdmissionTests {
    func configuration(size: Int, backing: MachineOptions.Backing = .anonymous, cpus: Int = 2)
        -> MirrordConfiguration
    {
        var configuration = MirrordConfiguration()
        configuration.machine.memorySize = size
        configuration.machine.backing = backing
        configuration.machine.workload.cpus = cpus
        return configuration
    }

    @Test("two modules and their bookkeeping must fit in MemAvailable and the cgroup's room")
    func memory() {
        let gib = 1 << 30
        var host = MemoryAdmission.Host(memoryAvailable: 24 * gib)
        #expect(MemoryAdmission.check(configuration(size: gib), on: host) == nil)
        let refusal = MemoryAdmission.check(configuration(size: 64 * gib), on: host)
        #expect(
            refusal?.description
                == "memory.size = 64GiB needs about 128.7 GiB of memory (two modules and their bookkeeping), but the machine has 24.0 GiB available (MemAvailable)"
        )
        host.cgroupAvailable = .init(left: 400 << 20, limit: "/sys/fs/cgroup/test/memory.max = 400.0 MiB")
        let cgroup = MemoryAdmission.check(configuration(size: 256 << 20), on: host)
        #expect(
            cgroup?.description.hasSuffix(
                "but the memory cgroup allows 400.0 MiB more (/sys/fs/cgroup/test/memory.max = 400.0 MiB)") == true)
        #expect(MemoryAdmission.check(configuration(size: 128 << 20), on: host) == nil)
        #expect(
            MemoryAdmission.check(configuration(size: 256 << 20, backing: .file), on: host) == nil,
            "file-backed modules are page cache, their blocks reserved on disk")
    }

    @Test("address space and thread limits are checked too")
    func limits() {
        let address = MemoryAdmission.check(configuration(size: 1 << 30), on: .init(addressSpaceLimit: 900_000 << 10))
        #expect(address?.description.contains("RLIMIT_AS") == true)
        let threads = MemoryAdmission.check(configuration(size: 64 << 20, cpus: 2), on: .init(threadLimit: 6))
        #expect(
            threads?.description
                == "2 CPUs need about 10 threads, but this user may have 6 (RLIMIT_NPROC: ulimit -u, LimitNPROC=)",
            "2 CPUs + DMA + engine + copy helper + 4 for the runtime + 1 running now")
        let busy = MemoryAdmission.check(
            configuration(size: 64 << 20, cpus: 2), on: .init(threadLimit: 11, ownThreads: 4))
        #expect(busy?.description.contains("about 13 threads") == true, "the threads already running count")
        #expect(MemoryAdmission.startupRefusal(on: .init(threadLimit: 6)) != nil)
        #expect(MemoryAdmission.startupRefusal(on: .init(threadLimit: 64)) == nil)
        #expect(
            MemoryAdmission.check(
                configuration(size: 64 << 20),
                on: .init(memoryAvailable: 1 << 30, addressSpaceLimit: 4 << 30, threadLimit: 64)) == nil)
    }

    @Test("a pids cgroup (TasksMax=) limits threads too; the tighter of it and RLIMIT_NPROC is named")
    func taskLimit() {
        let tasks = MemoryAdmission.TaskRoom(threads: 5, limit: "/sys/fs/cgroup/pids/x/pids.max = 8")
        #expect(
            MemoryAdmission.startupRefusal(on: .init(taskLimit: tasks))?.description
                == "mirrord needs at least 8 threads, but its pids cgroup allows 5 (/sys/fs/cgroup/pids/x/pids.max = 8; TasksMax=)"
        )
        #expect(
            MemoryAdmission.startupRefusal(on: .init(threadLimit: 64, taskLimit: .init(threads: 64, limit: ""))) == nil)
        let both = MemoryAdmission.check(
            configuration(size: 64 << 20, cpus: 2),
            on: .init(threadLimit: 9, taskLimit: .init(threads: 7, limit: "pids.max = 9")))
        #expect(
            both?.description == "2 CPUs need about 10 threads, but its pids cgroup allows 7 (pids.max = 9; TasksMax=)")
        let nproc = MemoryAdmission.check(
            configuration(size: 64 << 20, cpus: 2),
            on: .init(threadLimit: 6, taskLimit: .init(threads: 7, limit: "pids.max = 9")))
        #expect(nproc?.description.hasSuffix("this user may have 6 (RLIMIT_NPROC: ulimit -u, LimitNPROC=)") == true)
    }

    @Test("this host's figures are read (MemAvailable at least)")
    func currentHost() {
        let host = MemoryAdmission.Host.current()
        #expect((host.memoryAvailable ?? 0) > 0)
        #expect(
            MemoryAdmission.check(configuration(size: 1 << 40), on: host) != nil, "1 TiB of modules fits nowhere here")
    }

    @Test("a second lock on one state directory is refused with the holder's PID; released with its holder")
    func stateDirectoryLock() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        var first: StateDirectoryLock? = try StateDirectoryLock(directory: dir, create: true)
        #expect(first != nil)
        do {
            _ = try StateDirectoryLock(directory: dir, create: true)
            Issue.record("a second lock was granted")
        } catch {
            #expect(error.held)
            #expect(error.holder == getpid())
            #expect(
                error.description
                    == "memory.state_dir \(dir) is in use by another mirrord (PID \(getpid())); two instances on one state directory would overwrite each other's modules"
            )
        }
        first = nil
        #expect(throws: Never.self) { _ = try StateDirectoryLock(directory: dir, create: false) }
    }

    @Test("deleting mirrord.lock does not free the state directory: a second lock is still refused, naming the holder")
    func lockFileDeleted() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)").path
        var first: StateDirectoryLock? = try StateDirectoryLock(directory: dir, create: true)
        #expect(first != nil)
        #expect(unlink(dir + "/" + StateDirectoryLock.fileName) == 0)
        do {
            _ = try StateDirectoryLock(directory: dir, create: true)
            Issue.record("a second lock was granted once the lock file was deleted")
        } catch {
            #expect(error.held)
            #expect(error.holder == getpid(), "the holder, read from /proc/locks")
        }
        first = nil
        #expect(throws: Never.self) { _ = try StateDirectoryLock(directory: dir, create: false) }
    }
}
