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

    private struct State {
        var log: ReleaseLog
        /// The writers' counts read in recent pauses, by epoch (slot `epoch % pendingSlots`).
        var pending: [(epoch: UInt64, sequence: WriterSequence)]
        /// Whether an append failed (said once in the journal).
        var failed = false
    }

    private let state: Mutex<State>
    private let machine: EmulatedMachine
    private let logger: Logger

    /// A recorder of `machine`'s released stores into a new log at `path`.
    init(path: String, machine: EmulatedMachine, logger: Logger) throws(ReleaseLog.Failure) {
        unlink(path)
        let log = try ReleaseLog(path: path)
        let empty = machine.writerSequence()
        state = Mutex(State(log: log, pending: Array(repeating: (0, empty), count: Self.pendingSlots)))
        self.machine = machine
        self.logger = logger
    }

    /// The hooks the engine calls in each epoch's pause and after its commit.
    var hooks: ReplicationHooks {
        ReplicationHooks(
            paused: { [self] epoch in
                state.withLock { state in
                    let slot = Int(epoch % UInt64(Self.pendingSlots))
                    state.pending[slot].epoch = epoch
                    machine.writerSequence(into: &state.pending[slot].sequence)
                }
            },
            committed: { [self] epoch in
                let failure = state.withLock { state -> String? in
                    let slot = Int(epoch % UInt64(Self.pendingSlots))
                    guard state.pending[slot].epoch == epoch, !state.failed else { return nil }
                    do {
                        try state.log.append(epoch: epoch, sequence: state.pending[slot].sequence)
                        return nil
                    } catch {
                        state.failed = true
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
}
