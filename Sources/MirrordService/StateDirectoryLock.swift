#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on `memory.state_dir`, held for the life of the process: two instances on
/// one directory would write the same image files and could both report `duplexed` over modules
/// that differ. The second instance is refused at once, told the holder's PID.
///
/// The lock is `flock` on `mirrord.lock` in the directory, which the kernel releases when the
/// process ends however it ends; the file keeps the holder's PID for the message.
final class StateDirectoryLock: Sendable {
    /// The lock file's name in the state directory.
    static let fileName = "mirrord.lock"

    /// Why the lock could not be taken.
    struct Failure: Error, CustomStringConvertible {
        /// The state directory.
        var directory: String
        /// Whether another process holds the lock.
        var held: Bool
        /// The PID of the instance that holds it, when its lock file says.
        var holder: Int32?
        /// What failed otherwise.
        var message: String

        var description: String {
            guard held else { return "cannot lock memory.state_dir \(directory): \(message)" }
            return "memory.state_dir \(directory) is in use by another mirrord" + (holder.map { " (PID \($0))" } ?? "")
                + "; two instances on one state directory would overwrite each other's modules"
        }
    }

    private let fd: Int32

    /// Takes the lock on `directory` (created with mode 0700 when `create` and missing).
    init(directory: String, create: Bool) throws(Failure) {
        func failure(_ what: String, _ code: Int32) -> Failure {
            Failure(
                directory: directory, held: false, holder: nil, message: "\(what): \(String(cString: strerror(code)))")
        }
        if create && mkdir(directory, 0o700) != 0 {
            let code = errno
            if code != EEXIST { throw failure("mkdir", code) }
        }
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            throw failure("open \(path)", code)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(fd) }
            guard code == EWOULDBLOCK else { throw failure("flock \(path)", code) }
            throw Failure(directory: directory, held: true, holder: Self.readPID(fd), message: "")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Whether `directory` exists (as a directory).
    static func exists(_ directory: String) -> Bool {
        var info = stat()
        return stat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: { !$0.isNumber }).first.flatMap {
            Int32($0)
        }
    }
}
