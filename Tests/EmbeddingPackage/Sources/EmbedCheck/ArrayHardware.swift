import MirrorCore
import Synchronization

/// A backend of two modules kept as byte arrays, with the dirty bits beside them, all behind one
/// lock. Its one CPU is whoever calls ``store(frame:value:)``.
///
/// Sendable as checked by the compiler: every stored property is immutable, and the mutable
/// state lives in a `Mutex`.
final class ArrayHardware: DuplexHardware {
    private struct State {
        var active: [UInt8]
        var spare: [UInt8]
        var dirty: [Bool]
        var tracking = false
        var lockstep = false
    }

    let backendName = "array"
    let geometry: MemoryGeometry
    private let state: Mutex<State>

    init(frameCount: Int, frameSize: Int = 4096) {
        geometry = MemoryGeometry(frameSize: frameSize, frameCount: frameCount)
        let bytes = [UInt8](repeating: 0, count: frameCount * frameSize)
        state = Mutex(State(active: bytes, spare: bytes, dirty: [Bool](repeating: false, count: frameCount)))
    }

    /// A CPU store: `value` into the first byte of `frame`, marked dirty while tracking, and
    /// written to the spare too in lockstep.
    func store(frame: Int, value: UInt8) {
        let offset = frame * geometry.frameSize
        state.withLock { state in
            state.active[offset] = value
            if state.lockstep { state.spare[offset] = value }
            if state.tracking { state.dirty[frame] = true }
        }
    }

    func startTracking() throws(HardwareError) {
        state.withLock { state in
            state.dirty = [Bool](repeating: false, count: geometry.frameCount)
            state.tracking = true
        }
    }

    func stopTracking() {
        state.withLock { $0.tracking = false }
    }

    var dirtyFrameCount: Int {
        state.withLock { state in state.dirty.reduce(0) { $0 + ($1 ? 1 : 0) } }
    }

    func harvest(frames: Range<Int>, flags: HarvestFlags, into output: UnsafeMutableBufferPointer<UInt32>)
        throws(HarvestError) -> HarvestResult
    {
        try flags.validate()
        guard frames.lowerBound >= 0, frames.upperBound <= geometry.frameCount else {
            throw .rangeOutOfBounds(frames, frameCount: geometry.frameCount)
        }
        let get = flags.contains(.get)
        let clear = flags.contains(.clear)
        if get && output.isEmpty { throw .emptyOutput }
        return try state.withLock { (state) throws(HarvestError) -> HarvestResult in
            guard state.tracking else { throw .trackingInactive }
            var reported = 0
            var cleared = 0
            for frame in frames where state.dirty[frame] {
                if get {
                    // Full: the frames from here on keep their dirty state.
                    guard reported < output.count else {
                        return HarvestResult(reported: reported, cleared: cleared, scanEnd: frame)
                    }
                    output[reported] = UInt32(frame)
                    reported += 1
                }
                if clear {
                    state.dirty[frame] = false
                    cleared += 1
                }
            }
            return HarvestResult(reported: reported, cleared: cleared, scanEnd: frames.upperBound)
        }
    }

    func copyToSpare(frames: Range<Int>) {
        let bytes = frames.lowerBound * geometry.frameSize..<frames.upperBound * geometry.frameSize
        state.withLock { $0.spare[bytes] = $0.active[bytes] }
    }

    func copyToSpare(frameList: UnsafeBufferPointer<UInt32>) {
        for frame in frameList { copyToSpare(frames: Int(frame)..<Int(frame) + 1) }
    }

    func verify(frames: Range<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        verify(frames, mismatches: mismatches)
    }

    func verify(frameList: UnsafeBufferPointer<UInt32>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult
    {
        verify(frameList.lazy.map { Int($0) }, mismatches: mismatches)
    }

    /// Compares `frames`, listing differing ones while `mismatches` has room and counting all.
    private func verify(_ frames: some Sequence<Int>, mismatches: UnsafeMutableBufferPointer<UInt32>) -> VerifyResult {
        let size = geometry.frameSize
        return state.withLock { state in
            var result = VerifyResult()
            for frame in frames {
                result.checked += 1
                let bytes = frame * size..<(frame + 1) * size
                guard state.active[bytes] != state.spare[bytes] else { continue }
                if result.reported < mismatches.count {
                    mismatches[result.reported] = UInt32(frame)
                    result.reported += 1
                }
                result.mismatches += 1
            }
            return result
        }
    }

    /// Nothing runs on its own here (the caller is the only CPU), so the stop is immediate.
    func enterBlackout() throws(HardwareError) -> UInt64 { 0 }

    func leaveBlackout() {}

    /// No DMA engine.
    func setDMADualWrite(_ enabled: Bool) {}

    func setLockstep(_ enabled: Bool) {
        state.withLock { $0.lockstep = enabled }
    }
}
