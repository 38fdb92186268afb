import Synchronization

/// The throttle of each emulated CPU, set by the engine and read by the CPU once per batch of
/// stores (never on the store path itself): one word a CPU, each on its own cache line, in parts
/// per million of the CPU's pace taken away.
final class ThrottleTable: Sendable {
    private static let scale = 1_000_000.0
    private let words: PaddedAtomics<UInt32>

    /// A table for `cpus` CPUs, none throttled.
    init(cpus: Int) {
        words = PaddedAtomics(count: cpus, initial: 0)
    }

    /// Sets `cpu`'s throttle to `fraction` (clamped to 0...0.999).
    func set(_ cpu: Int, _ fraction: Double) {
        guard cpu >= 0, cpu < words.count else { return }
        let clamped = min(max(fraction, 0), 0.999)
        words.word(cpu).pointee.store(UInt32(clamped * Self.scale), ordering: .relaxed)
    }

    /// `cpu`'s throttle, as a fraction.
    @inline(__always)
    func fraction(_ cpu: Int) -> Double {
        Double(words.word(cpu).pointee.load(ordering: .relaxed)) / Self.scale
    }
}
