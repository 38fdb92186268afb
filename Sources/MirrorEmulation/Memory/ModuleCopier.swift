import CMirrorShims
import MirrorCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The copy and compare paths between the active and the spare module: stripe by stripe under
/// the stripe locks that DMA transfers also take, on raw memory, with no allocation. Long copies
/// are split with a ``CopyHelper`` thread started with the machine, since one thread does not
/// reach the memory bandwidth.
final class ModuleCopier: Sendable {
    /// Stripes in a range before it is split between two threads.
    static let splitStripes = 8
    /// Frames in a list before it is split between two threads (as the engine's blackout model
    /// expects); two pieces or more.
    static let splitFrames = BlackoutModel.splitFrames
    /// Frames of a list taken at a time by each of the two threads (a run broken at a piece's
    /// end costs one more stripe lock).
    static let listPiece = 128
    /// Bytes in a run above which streaming (cache-bypassing) stores are used.
    static let streamingBytes = 64 << 10

    let modules: ModulePair
    let locks: StripeLocks
    private let frameShift: Int
    private let frameSize: Int
    private let helper = Mutex<CopyHelper?>(nil)
    /// Nanoseconds the callers waited for the helper while its thread was off its CPU.
    private let helperOffCPU = Atomic<UInt64>(0)
    /// The helper's time off its CPU in its last job; written by the helper before it ends the
    /// job, read by the caller after.
    private let lastJobOffCPU = Atomic<UInt64>(0)
    /// The pieces of a shared copy (stripes, or pieces of a list); reset by the one caller that
    /// owns the helper, before it posts the job.
    private let pieces = SharedPieces()

    /// The module copied from.
    private var active: MemoryModule { modules.active }
    /// The module copied to.
    private var spare: MemoryModule { modules.spare }

    /// A copier between the active and the spare module of `modules` (frames of `frameSize` bytes).
    init(modules: ModulePair, locks: StripeLocks, frameSize: Int) {
        self.modules = modules
        self.locks = locks
        self.frameSize = frameSize
        frameShift = frameSize.trailingZeroBitCount
    }

    /// Starts the helper thread that shares each long copy.
    func startHelper() throws(ThreadCreationError) {
        try helper.withLock { (helper) throws(ThreadCreationError) in
            guard helper == nil else { return }
            helper = try CopyHelper(name: "mirrord-copy") { [weak self] job in
                guard let self else { return }
                let (start, startCPU) = (MonotonicClock.nanoseconds(), MonotonicClock.threadCPUNanoseconds())
                switch job {
                case .range(let frames): self.drainStripes(frames, fromBack: true)
                case .list(let address, let count):
                    self.drainList(
                        UnsafeBufferPointer(start: UnsafePointer<UInt32>(bitPattern: address), count: count),
                        fromBack: true)
                case .idle, .quit: break
                }
                let (wall, ran) = (
                    MonotonicClock.nanoseconds() &- start, MonotonicClock.threadCPUNanoseconds() &- startCPU
                )
                self.lastJobOffCPU.store(wall > ran ? wall - ran : 0, ordering: .relaxed)
            }
        }
    }

    /// Stops the helper thread; later copies run on the caller's thread alone.
    func stopHelper() {
        let stopped = helper.withLock { h -> CopyHelper? in
            defer { h = nil }
            return h
        }
        stopped?.stop()
    }

    private var currentHelper: CopyHelper? { helper.withLock { $0 } }

    /// The helper, for the bench's look at its thread (nil when stopped).
    var copyHelper: CopyHelper? { currentHelper }

    /// Nanoseconds callers waited for the helper while its thread was off its CPU, since it
    /// started (see ``DuplexHardware/copyThreadsOffCPUNanoseconds``).
    var helperOffCPUNanoseconds: UInt64 { helperOffCPU.load(ordering: .relaxed) }

    /// Counts what a shared copy lost to the helper's thread being off its CPU: no more than the
    /// caller waited for it (`waited`, from ``CopyHelper/run(_:alongside:)``).
    private func account(waited: UInt64) {
        guard waited > 0 else { return }
        let lost = min(waited, lastJobOffCPU.load(ordering: .relaxed))
        if lost > 0 { helperOffCPU.add(lost, ordering: .relaxed) }
    }

    // MARK: - Copy

    /// Copies a range stripe by stripe with streaming stores; a range of many stripes is shared
    /// with the helper, which starts at the other end.
    func copy(frames: Range<Int>) {
        let stripes = StripeLocks.stripe(of: frames.upperBound - 1) - StripeLocks.stripe(of: frames.lowerBound) + 1
        if stripes >= Self.splitStripes, let helper = currentHelper {
            pieces.reset(count: stripes)
            if let waited = helper.run(.range(frames), alongside: { drainStripes(frames, fromBack: false) }) {
                account(waited: waited)
                return
            }
        }
        copyStripes(frames)
    }

    /// Copies listed frames, runs of adjacent frames in one go; a long list is shared with the
    /// helper, which starts at the other end (in a blackout the CPUs are stopped and their cores
    /// idle).
    func copy(frameList: UnsafeBufferPointer<UInt32>) {
        if frameList.count >= Self.splitFrames, let helper = currentHelper {
            pieces.reset(count: (frameList.count + Self.listPiece - 1) / Self.listPiece)
            let address = UInt(bitPattern: frameList.baseAddress!)
            if let waited = helper.run(
                .list(address: address, count: frameList.count), alongside: { drainList(frameList, fromBack: false) })
            {
                account(waited: waited)
                return
            }
        }
        copyList(frameList)
    }

    /// Copies the stripes of `frames` claimed from one end of ``pieces`` until the ends meet.
    private func drainStripes(_ frames: Range<Int>, fromBack: Bool) {
        let first = StripeLocks.stripe(of: frames.lowerBound)
        while let piece = fromBack ? pieces.claimBack() : pieces.claimFront() {
            let stripe = first + piece
            let start = max(frames.lowerBound, stripe * StripeLocks.framesPerStripe)
            copyStripes(start..<min(frames.upperBound, (stripe + 1) * StripeLocks.framesPerStripe))
        }
    }

    /// Copies the pieces of `frameList` claimed from one end of ``pieces`` until the ends meet.
    private func drainList(_ frameList: UnsafeBufferPointer<UInt32>, fromBack: Bool) {
        while let piece = fromBack ? pieces.claimBack() : pieces.claimFront() {
            let start = piece * Self.listPiece
            copyList(UnsafeBufferPointer(rebasing: frameList[start..<min(frameList.count, start + Self.listPiece)]))
        }
    }

    private func copyStripes(_ frames: Range<Int>) {
        var frame = frames.lowerBound
        while frame < frames.upperBound {
            let stripe = StripeLocks.stripe(of: frame)
            let end = min(frames.upperBound, (stripe + 1) * StripeLocks.framesPerStripe)
            copyRun(frame, end, stripe: stripe)
            frame = end
        }
    }

    private func copyList(_ frameList: UnsafeBufferPointer<UInt32>) {
        var i = 0
        let n = frameList.count
        while i < n {
            let first = Int(frameList[i])
            let stripe = StripeLocks.stripe(of: first)
            let stripeEnd = (stripe + 1) * StripeLocks.framesPerStripe
            var end = first + 1
            i += 1
            while i < n, Int(frameList[i]) == end, end < stripeEnd {
                end += 1
                i += 1
            }
            copyRun(first, end, stripe: stripe)
        }
    }

    /// Copies frames `first..<end` of one stripe under its lock: streaming stores for long runs
    /// (bulk copies), `memcpy` for short ones (the final copy's scattered frames).
    @inline(__always)
    private func copyRun(_ first: Int, _ end: Int, stripe: Int) {
        let offset = first << frameShift
        let bytes = (end - first) << frameShift
        locks.lock(stripe)
        if bytes >= Self.streamingBytes {
            mirrord_copy_streaming(spare.base + offset, active.base + offset, bytes)
        } else {
            memcpy(spare.base + offset, active.base + offset, bytes)
        }
        locks.unlock(stripe)
    }

    // MARK: - Compare

    /// Compares stripe by stripe with `memcmp`, frame by frame only where a stripe differs.
    func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        var result = VerifyResult()
        var frame = frames.lowerBound
        while frame < frames.upperBound {
            let end = min(frames.upperBound, frame + StripeLocks.framesPerStripe)
            let offset = frame << frameShift
            if memcmp(spare.base + offset, active.base + offset, (end - frame) << frameShift) != 0 {
                for f in frame..<end { compare(f, into: mismatches, &result) }
                result.checked -= end - frame
            }
            result.checked += end - frame
            frame = end
        }
        return result
    }

    /// Compares the listed frames one by one.
    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult
    {
        var result = VerifyResult()
        for frame in frameList { compare(Int(frame), into: mismatches, &result) }
        return result
    }

    @inline(__always)
    private func compare(
        _ frame: Int, into mismatches: UnsafeMutableBufferPointer<UInt32>, _ result: inout VerifyResult
    ) {
        let offset = frame << frameShift
        result.checked += 1
        if memcmp(spare.base + offset, active.base + offset, frameSize) != 0 {
            result.mismatches += 1
            if result.reported < mismatches.count {
                mismatches[result.reported] = UInt32(frame)
                result.reported += 1
            }
        }
    }
}
