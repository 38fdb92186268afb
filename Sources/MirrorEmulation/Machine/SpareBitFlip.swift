import Synchronization

/// The `fault.flip_spare_bit` fault: one bit of the spare flipped right after the final copy (as
/// the blackout that turned lockstep on ends), which the verify must catch.
final class SpareBitFlip: Sendable {
    private let armed: Atomic<Bool>
    private let flippedFrame = Atomic<Int>(-1)
    private let seed: UInt64

    /// A fault that fires once if `armed`; `seed` picks the frame.
    init(armed: Bool, seed: UInt64) {
        self.armed = Atomic(armed)
        self.seed = seed
    }

    /// The frame whose bit was flipped, if the fault fired.
    var frame: Int? {
        let frame = flippedFrame.load(ordering: .acquiring)
        return frame < 0 ? nil : frame
    }

    /// Flips one bit of `spare` (frames of `frameSize` bytes, `frameCount` of them) if armed;
    /// disarms itself.
    func fireIfArmed(spare: MemoryModule, frameSize: Int, frameCount: Int) {
        guard armed.exchange(false, ordering: .relaxed) else { return }
        var random = WyRandom(seed: seed ^ 0xF11B)
        let frame = scaled(random.next(), frameCount)
        let byte = spare.base.advanced(by: frame * frameSize + 7).assumingMemoryBound(to: UInt8.self)
        byte.pointee ^= 0x10
        flippedFrame.store(frame, ordering: .releasing)
    }
}
