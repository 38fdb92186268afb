import CMirrorShims
import MirrorCore
import MirrorReplication
import MirrorSystemd

#if canImport(Glibc)
import Glibc
#endif

/// `mirrord standby`: on the spare host, beside the NBD server that exports the image file, puts
/// each epoch the primary commits in place from the file itself (``ExportStandby``), so that the
/// primary ships every frame once (journal) instead of twice (journal, then in place over the
/// link). Runs until SIGTERM or SIGINT; holds the file meanwhile, so a takeover on it is refused.
package enum StandbyRunner {
    /// How long an idle standby waits before it looks again: an epoch committed just after a look
    /// is put in place within this, a small part of `remote.epoch`.
    static let idleNanoseconds: UInt64 = 500_000

    /// Runs the standby on the image file at `path`; `report` gets one line for each new sync and
    /// a summary line a second while epochs arrive. Returns the exit status.
    package static func run(
        imagePath path: String, report: (String) -> Void = { _ = writeStandardOutput($0 + "\n") }
    ) -> MirrordRunner.ExitStatus {
        let notifier = SystemdNotifier()
        let file: FileExportDevice
        do throws(ExportError) {
            // Mapped: every committed frame is a copy into the file's pages, not a `pwritev`.
            file = try FileExportDevice(path: path, mapped: true)
            try file.lock(for: "stand by on")
        } catch {
            let text = "standby refused: \(error)"
            printError("mirrord: error: \(text)")
            notifier.fatal(status: text, errno: error.kind == .inUse ? EBUSY : ENOENT)
            return error.kind == .inUse ? .busy : .failure
        }
        if let bytes = file.mappedBytes {
            // An epoch's frames are marked applied only after they are stable, so a standby that
            // ends in the middle of one leaves it to be put in place again.
            let line =
                "mirrord: standby: the export \(path) went away under the standby (SIGBUS: the file truncated, its "
                + "filesystem full, or a read error); nothing is marked applied that is not in place"
            _ = mirrord_sigbus_watch(bytes.baseAddress, bytes.count, line, MirrordRunner.ExitStatus.ioError.rawValue)
        }
        let standby = ExportStandby(device: file, name: path)
        if let why = file.unmappedBecause {
            report("\(path) is not mapped (\(why)): each frame written with a system call")
        }
        let started = "standing by on \(path): each committed epoch put in place here"
        report(started)
        notifier.ready(status: started)
        var second = MonotonicClock.nanoseconds()
        var epochs = 0
        var frames = 0
        var generation: UInt64 = 0
        while StartupSignal.received == nil {
            let pass: ExportStandby.Pass
            do throws(ExportError) {
                pass = try standby.applyCommitted()
            } catch {
                let text = "standby stopped: \(error)"
                printError("mirrord: error: \(text)")
                notifier.fatal(status: text, errno: EIO)
                return .failure
            }
            if pass.generation != generation && pass.generation != 0 {
                generation = pass.generation
                let who = pass.owner.map { "\($0)" } ?? "a primary"
                report(
                    pass.primaryApplies
                        ? "sync generation \(generation) from \(who): its primary puts the epochs in place itself "
                            + "(remote.standby = false there); nothing to do"
                        : "sync generation \(generation) from \(who): acknowledged; its epochs are put in place here")
            }
            epochs += pass.epochs
            frames += pass.frames
            let now = MonotonicClock.nanoseconds()
            if now &- second >= 1_000_000_000 {
                if epochs > 0 {
                    let line =
                        "applied through epoch \(pass.appliedEpoch): \(epochs) epochs, \(frames) frames in the last second"
                    report(line)
                    notifier.status(line)
                }
                second = now
                epochs = 0
                frames = 0
            }
            if pass.epochs == 0 { sleepNanoseconds(idleNanoseconds) }
        }
        report(
            "standby stopped by \(StartupSignal.received ?? "a signal"): applied through the last committed epoch it saw"
        )
        notifier.stopping(status: "stopped")
        return .success
    }

    private static func sleepNanoseconds(_ nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
    }
}
