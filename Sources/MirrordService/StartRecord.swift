import MirrorCore
import MirrorReplication

#if canImport(Glibc)
import Glibc
#endif

/// Where a host records each start of the machine (the Pacemaker agent's `IMAGE.machine-started`,
/// beside the export, so that it outlives a reboot as the export does): a bound below every sync
/// generation that machine's syncs get, the later of the wall clock before the start and, for a
/// takeover, the generation taken over plus one. Never lowered.
///
/// It is how a takeover knows, without asking the peer, that this host's export is the newest
/// there is: the peer's export is written only by machines this host ran, so a generation of this
/// host's export past the last recorded start was written after that machine stopped, by the
/// peer's, which took over what this host's had committed or found none (README, "Running it under
/// Pacemaker"). Holds while every start of the machine on the host is recorded here.
///
/// One decimal number of nanoseconds and a newline, as the agent's shell writes and reads it.
package struct StartRecord: Sendable, Hashable {
    /// The file.
    package var path: String

    /// The record at `path`.
    package init(path: String) { self.path = path }

    /// The bound last recorded; 0 when there is none (no file, or not a number, which the agent's
    /// shell reads as none too).
    package func read() -> UInt64 {
        guard var text = try? RegularFile.readText(path, limit: 32, what: "a start record") else { return 0 }
        if text.hasSuffix("\n") { text.removeLast() }
        return UInt64(text) ?? 0
    }

    /// Whether this host's export, at `position`, is known to be the newest there is: it holds a
    /// committed epoch whose sync generation is past the start last recorded (written after that
    /// machine stopped, by the peer's). Not at the bound itself, nor with no start recorded.
    package func knowsNewest(_ position: ExportProbe.Position?, started: UInt64) -> Bool {
        guard let position, started > 0 else { return false }
        return position.generation > started
    }

    /// The bound for a start now that takes over `generation` (nil: none): the later of the wall
    /// clock and `generation + 1`.
    package static func bound(takingOver generation: UInt64?, now: UInt64 = wallClockNanoseconds()) -> UInt64 {
        guard let generation, generation >= now else { return now }
        return generation + 1
    }

    /// Records `bound` (a new file renamed over the old one), unless the record holds as much
    /// already; `durable`, the new file is synced before the rename and the directory after it.
    /// Not durable, ``makeDurable()`` must follow before the machine can change anything outside
    /// this host. A takeover's CPUs may run first: a record lost to a crash before then reads as
    /// the older bound or none, and a later promote here compares the exports, or (none recorded,
    /// the peer's export silent) takes this host's over, which holds the epoch this takeover
    /// found newest, nothing having left the host since.
    package func raise(to bound: UInt64, durable: Bool = true) throws(StartRecordError) {
        guard bound > read() else { return }
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create \(temporary)") }
        if let code = writeFully("\(bound)\n", to: fd) ?? (!durable || fsync(fd) == 0 ? nil : errno) {
            close(fd)
            unlink(temporary)
            throw StartRecordError(path: path, operation: "write \(temporary)", reason: String(cString: strerror(code)))
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = failure("rename \(temporary)")
            unlink(temporary)
            throw error
        }
        if durable { try syncDirectory() }
    }

    /// Makes the record as last raised stable: the file, then its directory (the rename).
    package func makeDurable() throws(StartRecordError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("sync \(path)") }
        try syncDirectory()
    }

    /// Syncs the record's directory: a rename in it is then stable.
    private func syncDirectory() throws(StartRecordError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw failure("open \(directory)") }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw failure("sync \(directory)") }
    }

    /// The failure of `operation` with the system's reason (`errno`).
    private func failure(_ operation: String) -> StartRecordError {
        StartRecordError(path: path, operation: operation, reason: String(cString: strerror(errno)))
    }

    /// The wall clock, in nanoseconds since the epoch (as a sync's generation counts).
    package static func wallClockNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
