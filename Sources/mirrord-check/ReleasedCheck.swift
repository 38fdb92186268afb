import MirrorEmulation
import MirrordConfig
import MirrordService

#if canImport(Glibc)
import Glibc
#endif

/// The work of `mirrord-check released`: load the configuration as the service does, map the
/// image, read the release log, run ``ReleasedStoreCheck``; one line and an exit status.
struct ReleasedCheck {
    /// The exit status of a check that cannot run (a bad file, a machine the check refuses).
    static let cannotRun: Int32 = 2

    var configPath: String
    var imagePath: String
    var offset: Int
    var logPath: String
    var exact = false

    /// The line to print and the exit status: 0 held, 1 failed, 2 could not run.
    func run() -> (line: String, status: Int32) {
        do throws(Refusal) {
            return try check()
        } catch {
            return ("released check: cannot run: \(error.description)", Self.cannotRun)
        }
    }

    /// Why the check cannot run.
    struct Refusal: Error {
        var description: String
        init(_ description: String) { self.description = description }
    }

    private func check() throws(Refusal) -> (line: String, status: Int32) {
        let configuration: MirrordConfiguration
        do {
            configuration = try ConfigurationLoader.load(path: configPath, environment: ProcessEnvironment.current)
        } catch {
            throw Refusal("\(error)")
        }
        // The mapping the service builds its machine with, not a second one.
        let options = MachineFactory.options(for: configuration)
        let checker: ReleasedStoreCheck
        do {
            checker = try ReleasedStoreCheck(options: options)
        } catch {
            throw Refusal("\(configPath): \(error.description)")
        }
        let records: [ReleaseLog.Record]
        do {
            records = try ReleaseLog.read(path: logPath)
        } catch {
            throw Refusal(error.description)
        }
        let image = try MappedImage(path: imagePath, offset: offset, byteCount: options.memorySize)
        defer { image.unmap() }
        let last = records.last
        let report: ReleasedStoreCheck.Report
        do {
            if exact, let last {
                report = try checker.check(image: image.bytes, exactly: last.sequence)
            } else {
                report = try checker.check(image: image.bytes, released: last?.sequence)
            }
        } catch {
            throw Refusal("\(logPath): \(error.description)")
        }
        let released = last.map { "epoch \($0.epoch) released" } ?? "nothing released yet"
        let verdict = report.passed ? "ok" : "FAILED"
        return ("released check: \(verdict): \(released); \(report)", report.passed ? 0 : 1)
    }
}

/// An image mapped read-only from a file at an offset.
struct MappedImage {
    private let mapping: UnsafeMutableRawPointer
    private let length: Int
    /// The image's first byte.
    let bytes: UnsafeRawPointer

    /// Maps `byteCount` bytes of the regular file at `path` from `offset` (a multiple of 8).
    init(path: String, offset: Int, byteCount: Int) throws(ReleasedCheck.Refusal) {
        guard offset >= 0, offset % 8 == 0 else {
            throw ReleasedCheck.Refusal("--offset \(offset) is not a non-negative multiple of 8")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReleasedCheck.Refusal("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG || info.st_mode & S_IFMT == S_IFBLK else {
            throw ReleasedCheck.Refusal("\(path): not a regular file or block device")
        }
        if info.st_mode & S_IFMT == S_IFREG && Int(info.st_size) < offset + byteCount {
            throw ReleasedCheck.Refusal(
                "\(path): \(info.st_size) bytes, too short for an image of \(byteCount) bytes at offset \(offset)")
        }
        // mmap takes page-aligned offsets: map from the page the image starts in.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        length = offset - start + byteCount
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, off_t(start)), p != MAP_FAILED else {
            throw ReleasedCheck.Refusal("\(path): mmap: \(String(cString: strerror(errno)))")
        }
        _ = madvise(p, length, MADV_SEQUENTIAL)
        mapping = p
        bytes = UnsafeRawPointer(p + (offset - start))
    }

    /// Unmaps the image.
    func unmap() { munmap(mapping, length) }
}
