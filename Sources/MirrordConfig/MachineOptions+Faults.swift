extension MachineOptions {
    /// Faults the machine injects on purpose, for tests of the safety nets only
    /// (`fault.flip_spare_bit`, `fault.blackout_stall`, `fault.full_copy_stall`).
    package struct Faults: Sendable, Hashable {
        /// Flip one bit of the spare right after the final copy, which the verify must catch.
        package var flipSpareBit: Bool = false
        /// Hold every blackout this long (nanoseconds; 0: no) with the CPUs and DMA stopped.
        package var blackoutStallNanoseconds: UInt64 = 0
        /// Hold the start of every full copy this long (nanoseconds; 0: no).
        package var fullCopyStallNanoseconds: UInt64 = 0

        /// The defaults.
        package init() {}
    }
}
