import Foundation
import MirrorCore
import MirrorNBD

/// The standby of the bench's replication with `remote.standby`: `mirrord standby --image FILE`,
/// the product's own process, from the directory of the bench's executable (`.build/release/`);
/// without that file, ``RemoteBench/StandbyLoop`` on a thread of the bench.
enum Standby {
    /// `mirrord standby`, running.
    case process(StandbyProcess)
    /// The same passes on a thread of the bench.
    case loop(RemoteBench.StandbyLoop)

    /// `mirrord` beside this executable, if there is one.
    static var executable: String? {
        guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("mirrord").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// A standby on the image file at `image`, ready (holding the file) when this returns.
    static func start(image: String) throws -> Standby {
        if let executable { return .process(try StandbyProcess(executable: executable, image: image)) }
        return .loop(try RemoteBench.StandbyLoop(path: image))
    }

    /// The process's PID (nil: the loop, whose time is the bench's).
    var pid: pid_t? {
        if case .process(let process) = self { return process.pid }
        return nil
    }

    /// Stops it and says how it ran; a process stops on SIGTERM and must exit with status 0.
    func stop() throws -> String {
        switch self {
        case .process(let process):
            let status = try process.stop()
            guard status == 0 else {
                throw RemoteBenchError(
                    "mirrord standby (pid \(process.pid)) ended with wait status \(status) on SIGTERM: "
                        + process.logTail)
            }
            defer { try? FileManager.default.removeItem(atPath: process.log) }
            return "mirrord standby (\(process.executable)), stopped by SIGTERM, exit 0"
        case .loop(let loop):
            loop.stop()
            return "in-process standby loop (no mirrord beside the bench's executable)"
        }
    }
}

/// `mirrord standby --image FILE` as a child process, its output in a file beside the image.
final class StandbyProcess {
    /// How long the standby has to say it stands by.
    static let readyNanoseconds: UInt64 = 10_000_000_000

    let executable: String
    let pid: pid_t
    let log: String
    private var waited = false

    /// Spawns the standby and waits until it says it stands by on `image`.
    init(executable: String, image: String) throws {
        self.executable = executable
        log = image + ".standby.log"
        pid = try NBDLocalServer.spawn([executable, "standby", "--image", image], log: log)
        let deadline = MonotonicClock.nanoseconds() + Self.readyNanoseconds
        while !logTail.contains("standing by on") {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                waited = true
                throw RemoteBenchError("mirrord standby exited at its start (wait status \(status)): \(logTail)")
            }
            guard MonotonicClock.nanoseconds() < deadline else {
                throw RemoteBenchError("mirrord standby did not stand by within 10 s: \(logTail)")
            }
            usleep(1_000)
        }
    }

    /// Its output so far (the last 2 KB), on one line.
    var logTail: String {
        guard let data = FileManager.default.contents(atPath: log) else { return "" }
        return String(decoding: data.suffix(2_048), as: UTF8.self).replacingOccurrences(of: "\n", with: " | ")
    }

    /// SIGTERM, then its wait status once it exits.
    func stop() throws -> Int32 {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw RemoteBenchError("waitpid \(pid): errno \(errno)") }
        }
        waited = true
        return status
    }

    deinit {
        // A bench that failed midway leaves no standby behind.
        guard !waited else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }
}
