/// How far each writer of an emulated machine has run its stream: every CPU's count of stores and
/// the DMA engine's count of transfers.
///
/// The machine's memory is a function of its options and these counts alone (for the patterns
/// without the emulated MMU): from the initial fill, CPU `c` has stored values `1…n` past its
/// base into its lane, the DMA engine has written transfers `1…n` into its own. A sequence read
/// inside a blackout (``EmulatedMachine/writerSequence()``) is exact: it is the state the memory
/// is in. Outside one the writers run on, and it is only approximate.
///
/// Sequences are what the emulated workload *releases* (``ReleaseLog``) once the epoch that holds
/// them has committed, and what ``ReleasedStoreCheck`` replays.
public struct WriterSequence: Sendable, Hashable, CustomStringConvertible {
    /// The stores of each CPU, in CPU order.
    public var cpuStores: [UInt64]
    /// The DMA engine's transfers, or nil when the machine has no DMA engine (a rate of 0 B/s).
    public var dmaTransfers: UInt64?

    /// A sequence of `cpuStores` and `dmaTransfers`.
    public init(cpuStores: [UInt64], dmaTransfers: UInt64?) {
        self.cpuStores = cpuStores
        self.dmaTransfers = dmaTransfers
    }

    /// The number of CPUs.
    public var cpuCount: Int { cpuStores.count }

    /// The writers, the CPUs and then the DMA engine when it runs (the lanes of the machine's
    /// frames, in order).
    public var writerCount: Int { cpuStores.count + (dmaTransfers == nil ? 0 : 1) }

    /// The count of writer `writer` (a CPU's stores, or the DMA engine's transfers after the CPUs).
    public func count(writer: Int) -> UInt64 {
        writer < cpuStores.count ? cpuStores[writer] : dmaTransfers ?? 0
    }

    /// The name of writer `writer`: `cpu0`, `cpu1`, …, `dma`.
    public static func writerName(_ writer: Int, cpus: Int) -> String {
        writer < cpus ? "cpu\(writer)" : "dma"
    }

    /// Whether every writer's count is at least the one in `other` (a sequence that has run on
    /// from it), with the same writers.
    public func covers(_ other: WriterSequence) -> Bool {
        cpuStores.count == other.cpuStores.count && (dmaTransfers == nil) == (other.dmaTransfers == nil)
            && (0..<writerCount).allSatisfy { count(writer: $0) >= other.count(writer: $0) }
    }

    /// `cpu0 812345 cpu1 812000 dma 4123`.
    public var description: String {
        (0..<writerCount).map { "\(Self.writerName($0, cpus: cpuCount)) \(count(writer: $0))" }
            .joined(separator: " ")
    }
}
