#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on `memory.state_dir`, held for the life of the process: two instances on
/// one directory would write the same image files and could both report `duplexed` over modules
/// that differ. The second instance is refused at once, told the holder's PID.
///
/// The lock is `flock` on the directory itself (opened `O_DIRECTORY`), which the kernel releases
/// when the process ends however it ends. A file can be unlinked from under its holder and a
/// new one locked beside it; the directory cannot be replaced while it holds the images, so
/// deleting `mirrord.lock` no longer lets a second instance in. `mirrord.lock` is still written
/// (and `flock`ed too, as releases before this one locked only it): it names the holder's PID;
/// when it is gone, the holder is read from `/proc/locks`.
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

    /// The directory, open and locked.
    private let directoryFD: Int32
    /// `mirrord.lock`, open and locked.
    private let fileFD: Int32

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
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else {
            let code = errno
            throw failure("open \(directory)", code)
        }
        guard flock(directoryFD, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(directoryFD) }
            guard code == EWOULDBLOCK else { throw failure("flock \(directory)", code) }
            throw Failure(
                directory: directory, held: true, holder: Self.holder(of: directory, directoryFD: directoryFD),
                message: "")
        }
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            close(directoryFD)
            throw failure("open \(path)", code)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            // An instance of a release that locked only the file.
            let code = errno
            defer {
                close(fd)
                close(directoryFD)
            }
            guard code == EWOULDBLOCK else { throw failure("flock \(path)", code) }
            throw Failure(directory: directory, held: true, holder: Self.readPID(fd), message: "")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.directoryFD = directoryFD
        self.fileFD = fd
    }

    deinit {
        close(fileFD)
        close(directoryFD)
    }

    /// Whether `directory` exists (as a directory).
    static func exists(_ directory: String) -> Bool {
        var info = stat()
        return stat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The PID of the process that holds the lock on `directory`: what its `mirrord.lock` says,
    /// or, when that file is gone or empty, the `FLOCK` entry of `/proc/locks` on the directory.
    private static func holder(of directory: String, directoryFD: Int32) -> Int32? {
        let fd = open(directory + "/" + fileName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            if let pid = readPID(fd) { return pid }
        }
        var info = stat()
        guard fstat(directoryFD, &info) == 0 else { return nil }
        return lockHolder(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The PID that `/proc/locks` gives for the `FLOCK` lock on the inode `inode` of `device`
    /// (lines such as `2: FLOCK  ADVISORY  WRITE 25019 fe:00:16223598 0 EOF`).
    static func lockHolder(device: UInt64, inode: UInt64) -> Int32? {
        guard let file = fopen("/proc/locks", "re") else { return nil }
        defer { fclose(file) }
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK" else { continue }
            let id = fields[5].split(separator: ":")
            guard id.count == 3, UInt64(id[0], radix: 16) == major, UInt64(id[1], radix: 16) == minor,
                UInt64(id[2]) == inode
            else { continue }
            return Int32(fields[4])
        }
        return nil
    }

    /// The PID written in an open `mirrord.lock`, if it holds one.
    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: { !$0.isNumber }).first.flatMap {
            Int32($0)
        }
    }
}
