import Logging
import MirrorCore
import MirrorEmulation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Output commit for the emulated workload, as Remus holds back a guest's network output: in
/// each epoch's pause it reads every writer's count of stores (exact there, every writer
/// stopped), and only once that epoch has committed on the spare host does it append them to
/// the release log (`remote.release_log`), the workload's output to the outside world. After a
/// host failure and a takeover, a checker that knows nothing of mirrord (`mirrord-check
/// released`) replays each writer's stores and finds every released one in the memory taken
/// over, or counts what was lost.
///
/// The log is started afresh with the service: epochs count from this run.
final class ReleaseRecorder: Sendable {
    /// Epochs paused and not yet committed, at most: two in staging and one being taken.
    private static let pendingSlots = 4

    /// The writers' counts read in recent pauses, by epoch (slot `epoch % pendingSlots`). The
    /// pause takes this lock, so it is held only to copy counts in or out, never across a write.
    private typealias Pending = [(epoch: UInt64, sequence: WriterSequence)]

    private struct Log {
        var log: ReleaseLog
        /// The counts being appended, copied out of their slot (so that the append's write(2)
        /// happens outside the lock the pause takes).
        var released: WriterSequence
        /// Whether an append failed (said once in the journal).
        var failed = false
    }

    private let pending: Mutex<Pending>
    private let log: Mutex<Log>
    private let machine: EmulatedMachine
    private let logger: Logger

    /// A recorder of `machine`'s released stores into a new log at `path`.
    init(path: String, machine: EmulatedMachine, logger: Logger) throws(ReleaseLog.Failure) {
        unlink(path)
        let log = try ReleaseLog(path: path)
        // A sequence of its own in each slot (not one array shared copy-on-write): the pause
        // then writes every slot in place, never copying one.
        pending = Mutex((0..<Self.pendingSlots).map { _ in (epoch: 0, sequence: machine.writerSequence()) })
        self.log = Mutex(Log(log: log, released: machine.writerSequence()))
        self.machine = machine
        self.logger = logger
    }

    /// The hooks the engine calls in each epoch's pause and after its commit.
    var hooks: ReplicationHooks {
        ReplicationHooks(
            paused: { [self] epoch in
                pending.withLock { pending in
                    let slot = Int(epoch % UInt64(Self.pendingSlots))
                    pending[slot].epoch = epoch
                    machine.writerSequence(into: &pending[slot].sequence)
                }
            },
            committed: { [self] epoch in
                let failure = log.withLock { log -> String? in
                    guard !log.failed else { return nil }
                    let found = pending.withLock { pending -> Bool in
                        let slot = Int(epoch % UInt64(Self.pendingSlots))
                        guard pending[slot].epoch == epoch else { return false }
                        Self.copy(pending[slot].sequence, into: &log.released)
                        return true
                    }
                    guard found else { return nil }
                    do {
                        try log.log.append(epoch: epoch, sequence: log.released)
                        return nil
                    } catch {
                        log.failed = true
                        return "\(error)"
                    }
                }
                if let failure {
                    logger.error(
                        "remote.release_log: cannot record released stores (\(failure)); no more are recorded",
                        metadata: ["mirrord_state": "replicating"])
                }
            })
    }

    /// Copies `source` into `target` count by count: both have the machine's writers, so no
    /// array is allocated or shared (the pause writes its slot in place again later).
    private static func copy(_ source: WriterSequence, into target: inout WriterSequence) {
        for cpu in source.cpuStores.indices { target.cpuStores[cpu] = source.cpuStores[cpu] }
        target.dmaTransfers = source.dmaTransfers
    }
}
