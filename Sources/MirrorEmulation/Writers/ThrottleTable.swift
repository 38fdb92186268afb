import Synchronization

/// The throttle of each emulated CPU, set by the engine and read by the CPU once per batch of
/// stores (never on the store path itself): one word a CPU, each on its own cache line, in parts
/// per million of the CPU's pace taken away.
final class ThrottleTable: @unchecked Sendable {
    // @unchecked: the words are `Atomic` in storage owned here.
    private static let stride = 64
    private static let scale = 1_000_000.0
    private let storage: UnsafeMutableRawPointer
    private let cpus: Int

    /// A table for `cpus` CPUs, none throttled.
    init(cpus: Int) {
        self.cpus = cpus
        storage = .allocate(byteCount: max(1, cpus) * Self.stride, alignment: 64)
        for i in 0..<cpus { word(i).initialize(to: Atomic(0)) }
    }

    deinit {
        for i in 0..<cpus { word(i).deinitialize(count: 1) }
        storage.deallocate()
    }

    private func word(_ cpu: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (storage + cpu * Self.stride).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// Sets `cpu`'s throttle to `fraction` (clamped to 0...0.999).
    func set(_ cpu: Int, _ fraction: Double) {
        guard cpu >= 0, cpu < cpus else { return }
        let clamped = min(max(fraction, 0), 0.999)
        word(cpu).pointee.store(UInt32(clamped * Self.scale), ordering: .relaxed)
    }

    /// `cpu`'s throttle, as a fraction.
    @inline(__always)
    func fraction(_ cpu: Int) -> Double {
        Double(word(cpu).pointee.load(ordering: .relaxed)) / Self.scale
    }
}
