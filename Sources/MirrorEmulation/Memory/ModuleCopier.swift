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
    /// Frames in a list before it is split between two threads.
    static let splitFrames = 512
    /// Bytes in a run above which streaming (cache-bypassing) stores are used.
    static let streamingBytes = 64 << 10

    let active: MemoryModule
    let spare: MemoryModule
    let locks: StripeLocks
    private let frameShift: Int
    private let frameSize: Int
    private let helper = Mutex<CopyHelper?>(nil)

    /// A copier between `active` and `spare` (frames of `frameSize` bytes).
    init(active: MemoryModule, spare: MemoryModule, locks: StripeLocks, frameSize: Int) {
        self.active = active
        self.spare = spare
        self.locks = locks
        self.frameSize = frameSize
        frameShift = frameSize.trailingZeroBitCount
    }

    /// Starts the helper thread that takes half of each long copy.
    func startHelper() {
        helper.withLock { helper in
            guard helper == nil else { return }
            helper = CopyHelper(name: "mirrord-copy") { [weak self] job in
                guard let self else { return }
                switch job {
                case .range(let frames): self.copyStripes(frames)
                case .list(let address, let count):
                    self.copyList(UnsafeBufferPointer(start: UnsafePointer<UInt32>(bitPattern: address), count: count))
                case .idle, .quit: break
                }
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

    // MARK: - Copy

    /// Copies a range stripe by stripe with streaming stores; a range of many stripes is split
    /// with the helper.
    func copy(frames: Range<Int>) {
        let stripes = (frames.count + StripeLocks.framesPerStripe - 1) / StripeLocks.framesPerStripe
        if stripes >= Self.splitStripes, let helper = currentHelper {
            let middle = frames.lowerBound + stripes / 2 * StripeLocks.framesPerStripe
            let split = helper.run(.range(middle..<frames.upperBound)) { copyStripes(frames.lowerBound..<middle) }
            if split { return }
        }
        copyStripes(frames)
    }

    /// Copies listed frames, runs of adjacent frames in one go; a long list is split with the
    /// helper (in a blackout the CPUs are stopped and their cores idle).
    func copy(frameList: UnsafeBufferPointer<UInt32>) {
        if frameList.count >= Self.splitFrames, let helper = currentHelper {
            let middle = frameList.count / 2
            let address = UInt(bitPattern: frameList.baseAddress! + middle)
            let split = helper.run(.list(address: address, count: frameList.count - middle)) {
                copyList(UnsafeBufferPointer(rebasing: frameList[..<middle]))
            }
            if split { return }
        }
        copyList(frameList)
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
    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        var result = VerifyResult()
        for frame in frameList { compare(Int(frame), into: mismatches, &result) }
        return result
    }

    @inline(__always)
    private func compare(_ frame: Int, into mismatches: UnsafeMutableBufferPointer<UInt32>, _ result: inout VerifyResult) {
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
