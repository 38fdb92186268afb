import MirrorCore

/// How the bytes of a frame are shared out among writers.
///
/// A frame is cut into *units* of the store size; unit `u` belongs to writer `u % writers`. Each
/// CPU and the DMA engine writes only its own units. In lockstep a store goes to the active module
/// and then to the spare; two writers storing the same bytes could land in opposite orders in the
/// two modules and leave them different for good. Real lockstep hardware orders both writes in
/// the memory controller; the emulation gets the same guarantee by never letting two writers share
/// a unit.
struct LaneLayout: Sendable, Hashable {
    /// Bytes in one unit (`workload.store_size`).
    let storeSize: Int
    /// log2 of `storeSize`.
    let storeShift: Int
    /// Units in one frame.
    let unitsPerFrame: Int
    /// Writers sharing each frame (CPUs, plus one for the DMA engine).
    let writers: Int

    init(frameSize: Int, storeSize: Int, writers: Int) {
        self.storeSize = storeSize
        self.storeShift = storeSize.trailingZeroBitCount
        self.unitsPerFrame = frameSize / storeSize
        self.writers = max(1, writers)
    }

    /// How many units of each frame belong to `lane`.
    func unitCount(lane: Int) -> Int {
        lane >= unitsPerFrame ? 0 : (unitsPerFrame - lane + writers - 1) / writers
    }

    /// The `index`-th unit of `lane` in a frame.
    @inline(__always)
    func unit(lane: Int, index: Int) -> Int { lane &+ index &* writers }

    /// The unit of `lane` nearest to `unit` (for replaying traces, whose offsets belong to nobody).
    @inline(__always)
    func nearestUnit(lane: Int, to unit: Int) -> Int {
        var u = (unit / writers) &* writers &+ lane
        if u >= unitsPerFrame { u &-= writers }
        return u
    }
}
