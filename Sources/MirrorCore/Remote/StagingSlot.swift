#if canImport(Glibc)
import Glibc
#endif

/// One half of the staging area: an epoch's frame list and its frames' contents, copied as its
/// pause found them (after the resume, with copy-on-write), waiting for its commit. Owned by one thread at a time: the replicator fills it in a
/// pause and hands it to the shipping thread, which hands it back once the epoch committed (both
/// through ``EpochReplicator``'s lock, which orders the accesses).
final class StagingSlot: @unchecked Sendable {
    // @unchecked: raw buffers passed between two threads through a lock (see above).
    /// The epoch's frames, ascending.
    let frames: UnsafeMutableBufferPointer<UInt32>
    /// Their contents, one after another in list order.
    let data: UnsafeMutableRawPointer
    /// Bytes mapped for `data`.
    private let dataBytes: Int
    /// Frames listed.
    var count = 0
    /// Frames of `data` whose pages have been touched (see ``prefault(upTo:)``).
    private(set) var touchedFrames = 0
    /// The most frames `data` holds.
    let capacity: Int
    /// The epoch it holds.
    var epoch: UInt64 = 0
    /// When its pause began (the clock's nanoseconds).
    var pausedAt: UInt64 = 0
    /// How long its pause, stop and staging copy took (nanoseconds).
    var pauseNanoseconds: UInt64 = 0
    var stopNanoseconds: UInt64 = 0
    var stageNanoseconds: UInt64 = 0
    /// Frames copied in the pause, and by writers after it (copy-on-write).
    var copiedInPause = 0
    var copiedByWriters = 0

    /// A slot for epochs of up to `capacity` frames of `frameSize` bytes. Its memory is reserved,
    /// not committed: only the frames an epoch stages take memory.
    init(capacity: Int, frameSize: Int) throws(HardwareError) {
        dataBytes = max(1, capacity) * frameSize
        let mapped = mmap(nil, dataBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped, mapped != MAP_FAILED else {
            let code = errno
            throw HardwareError(
                .memory, operation: "map the staging area",
                message:
                    "mmap of \(ByteCount.format(dataBytes)) (remote.staging) failed: \(String(cString: strerror(code)))",
                errno: code)
        }
        data = mapped
        frames = .allocate(capacity: max(1, capacity))
        self.capacity = max(1, capacity)
        self.frameSize = frameSize
    }

    private let frameSize: Int

    /// Touches the pages of the first `count` frames (at most the capacity), outside any pause:
    /// a page first touched inside a pause costs a fault there (about 1.4 µs a frame on the
    /// development host, against 0.5 µs for the copy itself). Memory is taken only as epochs need.
    func prefault(upTo count: Int) {
        let end = min(count, capacity)
        guard end > touchedFrames else { return }
        let page = Int(getpagesize())
        var offset = touchedFrames * frameSize
        while offset < end * frameSize {
            data.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += page
        }
        touchedFrames = end
    }

    deinit {
        munmap(data, dataBytes)
        frames.deallocate()
    }

    /// The listed frames.
    var list: UnsafeBufferPointer<UInt32> { UnsafeBufferPointer(rebasing: frames[0..<count]) }
}
