/// The writers that share each frame of a machine, the CPUs and the DMA engine when it runs, and
/// whether they fit: each writer stores into its own units of the store size, so a frame needs at
/// least one unit a writer.
///
/// A pure rule asked in two places, by the configuration check (so that `--check-config` refuses
/// what the run would refuse) and by the machine before it builds its lanes; it lives here so that
/// both ask the same question without either knowing the other.
package struct WriterLayout: Sendable, Hashable {
    /// The CPU threads that store.
    package var cpus: Int
    /// Whether the DMA engine runs (a rate other than 0 B/s), and so writes as one more writer.
    package var dmaRuns: Bool
    /// Bytes written by one store (`workload.store_size`).
    package var storeSize: Int
    /// Bytes in a frame.
    package var frameSize: Int

    /// A layout of `cpus` CPUs, the DMA engine at `dmaRate`, stores of `storeSize` bytes in frames
    /// of `frameSize` bytes.
    package init(cpus: Int, dmaRate: ByteRate, storeSize: Int, frameSize: Int) {
        self.cpus = cpus
        self.dmaRuns = dmaRate.bytesPerSecond != 0
        self.storeSize = storeSize
        self.frameSize = frameSize
    }

    /// The writers that share each frame: the CPUs, and the DMA engine when it runs.
    package var writerCount: Int { cpus + (dmaRuns ? 1 : 0) }

    /// Why these writers do not fit in a frame, in words that name the keys to change, or nil
    /// when they do.
    package var problem: String? {
        let units = frameSize / max(1, storeSize)
        guard writerCount > units else { return nil }
        return "\(writerCount) writers (workload.cpus plus the DMA engine) need at least as many units of "
            + "workload.store_size (\(storeSize) B) in a \(frameSize) B frame, which has \(units); "
            + "lower workload.store_size or workload.cpus"
    }
}
