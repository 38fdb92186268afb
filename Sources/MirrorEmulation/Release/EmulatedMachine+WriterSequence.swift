extension EmulatedMachine {
    /// Every writer's count: each CPU's stores and the DMA engine's transfers.
    ///
    /// Exact inside a blackout (after ``enterBlackout()`` returns and before ``leaveBlackout()``):
    /// each writer counts its work before it reaches a checkpoint or parks, and the blackout
    /// waits for every writer to be stopped at one (or parked). Outside a blackout the writers run
    /// on and the counts are only approximate (a CPU counts a batch of stores after making it).
    public func writerSequence() -> WriterSequence {
        var sequence = WriterSequence(cpuStores: [], dmaTransfers: nil)
        writerSequence(into: &sequence)
        return sequence
    }

    /// Reads ``writerSequence()`` into `sequence`, reusing its storage (no allocation once it has
    /// room for every CPU): for a reader that takes one at every epoch.
    public func writerSequence(into sequence: inout WriterSequence) {
        sequence.cpuStores.removeAll(keepingCapacity: true)
        for cpu in 0..<writers.cpuCount { sequence.cpuStores.append(UInt64(writers.storeCounters.count(of: cpu))) }
        sequence.dmaTransfers = writers.hasDMA ? UInt64(writers.transferCount) : nil
    }
}
