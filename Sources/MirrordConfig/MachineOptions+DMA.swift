import MirrorCore

extension MachineOptions {
    /// The DMA engine (`dma.rate`, `dma.block_size`).
    package struct DMA: Sendable, Hashable {
        /// Bytes written a second; 0 B/s switches the engine off.
        package var rate: ByteRate = .limited(bytesPerSecond: 16 << 20)
        /// Bytes of one DMA transfer (a power of two, one frame to 2 MiB).
        package var blockSize: Int = 64 << 10

        /// The defaults.
        package init() {}
    }
}
