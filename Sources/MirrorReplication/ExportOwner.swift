/// Which primary replicates to an export, written in its header: a second primary is refused
/// (and named), so that two hosts never ship epochs into one export; a takeover writes the
/// backup host as the owner.
package struct ExportOwner: Sendable, Hashable, CustomStringConvertible {
    /// The host's `/etc/machine-id` (32 hex digits): the same host after a restart owns it still.
    package var machineID: String
    /// The host's name, for people.
    package var hostname: String
    /// The process that wrote it.
    package var pid: Int32
    /// When it became the owner (Unix time, nanoseconds).
    package var since: UInt64

    /// An owner record of the given values.
    package init(machineID: String, hostname: String, pid: Int32, since: UInt64) {
        self.machineID = machineID
        self.hostname = hostname
        self.pid = pid
        self.since = since
    }

    /// Bytes each text field takes in the header (cut, NUL-padded).
    static let fieldBytes = 64

    /// `"host-a (machine-id 0123…, pid 4242)"`.
    package var description: String {
        "\(hostname) (machine-id \(machineID.prefix(12))…, pid \(pid))"
    }

    /// Whether `other` is the same host (a restart of the same primary may reuse its export).
    package func isSameHost(as other: ExportOwner) -> Bool { machineID == other.machineID }
}

#if canImport(Glibc)
import Glibc
#endif

extension ExportOwner {
    /// This host as an owner: its `/etc/machine-id` (empty when it has none), host name, this
    /// process and the time now. A takeover writes it into the header.
    package static func local() -> ExportOwner {
        var machineID = ""
        if let file = fopen("/etc/machine-id", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 64)
            if fgets(&line, Int32(line.count), file) != nil {
                machineID = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    .filter { $0.isHexDigit }
            }
        }
        var name = [CChar](repeating: 0, count: 256)
        let hostname =
            gethostname(&name, name.count - 1) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return ExportOwner(
            machineID: machineID, hostname: hostname, pid: getpid(),
            since: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
    }
}
