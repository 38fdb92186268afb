/// The monotonic counters of one CPU of the machine, read between passes: how much it stores and
/// how many frames it dirties, from which the engine takes each CPU's dirty rate.
public struct CPUCounters: Sendable, Hashable {
    /// Stores the CPU has made.
    public var stores: UInt64
    /// Frames the CPU turned from clean to dirty (its first store to each), or nil when the
    /// backend cannot tell CPUs apart (a real MMU's tracking sees pages, not CPUs).
    public var dirtiedFrames: UInt64?

    /// Creates a reading.
    public init(stores: UInt64 = 0, dirtiedFrames: UInt64? = nil) {
        self.stores = stores
        self.dirtiedFrames = dirtiedFrames
    }
}
