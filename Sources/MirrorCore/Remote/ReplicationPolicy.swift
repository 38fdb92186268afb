/// The tunables of a spare on another host: how often an epoch is taken and how much the staging
/// area holds (the largest epoch). The blackout target of ``DuplexPolicy`` also bounds each
/// epoch's pause.
public struct ReplicationPolicy: Sendable, Hashable {
    /// Nanoseconds from one epoch's pause to the next (`remote.epoch`).
    public var epochNanoseconds: UInt64
    /// Bytes of the local staging area (`remote.staging`): an epoch holds at most this many bytes
    /// of frames, and so does each of the export's two journal halves.
    public var stagingBytes: Int

    /// Creates a policy; the defaults are those of `config/mirrord.conf`.
    public init(epochNanoseconds: UInt64 = 10_000_000, stagingBytes: Int = 256 << 20) {
        self.epochNanoseconds = epochNanoseconds
        self.stagingBytes = stagingBytes
    }

    /// The frames an epoch may hold with frames of `frameSize` bytes.
    public func epochCapacity(frameSize: Int) -> Int { stagingBytes / frameSize }
}
