/// The whole configuration of mirrord, one nested type a section of `mirrord.conf`.
///
/// The defaults here are the built-in defaults, and `config/mirrord.conf` writes them out; a test
/// keeps the two equal.
public struct MirrordConfiguration: Sendable, Hashable {
    /// `[hardware]`: which backend implements ``DuplexHardware``.
    public struct Hardware: Sendable, Hashable {
        /// The backends this build knows.
        public enum Backend: String, Sendable, Hashable, CaseIterable {
            /// The emulated active/spare pair with CPU threads and a DMA engine.
            case emulated
            /// The same machine, but the CPUs' writes are tracked by the real MMU: userfaultfd
            /// write-protect (async) and PAGEMAP_SCAN (Linux 6.7+). `[mmu]` does not apply.
            case uffd
            /// The classic userspace baseline: `mprotect` and a SIGSEGV handler. Slow, and it
            /// fails (cleanly) past `vm.max_map_count` scattered written pages. `[mmu]` does not apply.
            case mprotect

            /// Whether the real MMU tracks writes (and the emulated MMU does not apply).
            public var usesRealMMU: Bool { self != .emulated }
        }
        /// `hardware.backend`.
        public var backend: Backend = .emulated
    }

    /// `[memory]`: the two memory modules.
    public struct Memory: Sendable, Hashable {
        /// What the modules are made of.
        public enum Backing: String, Sendable, Hashable, CaseIterable {
            /// Anonymous memory, gone when the process exits.
            case anonymous
            /// Two image files, `active.img` and `spare.img` in `state_dir`, mapped shared, so
            /// that outside tools can compare them after a run.
            case file
        }
        /// `memory.size`: bytes in each module (a whole number of frames).
        public var size: Int = 1 << 30
        /// `memory.backing`.
        public var backing: Backing = .anonymous
        /// `memory.state_dir`: where file-backed modules live.
        public var stateDirectory: String = "/var/lib/mirrord"
        /// The frame size; fixed at 4 KiB, as on x86-64.
        public var frameSize: Int { 4096 }
    }

    /// `[duplex]`: when the passes end.
    public struct Duplex: Sendable, Hashable {
        /// `duplex.threshold_frames`: enter the blackout once this few frames are dirty.
        public var thresholdFrames: Int = 1024
        /// `duplex.max_passes`: the most passes before the blackout.
        public var maxPasses: Int = 30
        /// `duplex.min_progress`: the least fraction a pass must shrink the dirty set by.
        public var minProgress: Double = 0.05
        /// `duplex.verify_in_blackout`: compare the final frames inside the blackout.
        public var verifyInBlackout: Bool = false
    }

    /// `[workload]`: what the emulated CPUs run.
    public struct Workload: Sendable, Hashable {
        /// Where the stores go.
        public enum Pattern: String, Sendable, Hashable, CaseIterable {
            /// Every frame alike.
            case uniform
            /// A hot fraction of frames takes most stores.
            case hotset
            /// Frame after frame, wrapping around.
            case sequential
            /// Replay of a `valgrind --tool=lackey --trace-mem=yes` log.
            case trace
        }
        /// `workload.pattern`.
        public var pattern: Pattern = .hotset
        /// `workload.cpus`: how many CPU threads store.
        public var cpus: Int = 2
        /// `workload.rate`: bytes stored a second, over all CPUs.
        public var rate: ByteRate = .limited(bytesPerSecond: 32 << 20)
        /// `workload.seed`: makes the store sequence reproducible.
        public var seed: UInt64 = 1
        /// `workload.hot_fraction`: the share of frames in the hot set (`hotset`).
        public var hotFraction: Double = 0.05
        /// `workload.hot_share`: the share of stores that go to the hot set (`hotset`).
        public var hotShare: Double = 0.9
        /// `workload.store_size`: bytes written by one store (a power of two, 8 B to one frame).
        public var storeSize: Int = 64
        /// `workload.trace`: the lackey log to replay (`trace`).
        public var trace: String = ""
        /// `workload.churn`: page-table operations per second over all CPUs (map, unmap, remap,
        /// fork, exit); 0 for none. Needs the MMU.
        public var churn: Double = 200
    }

    /// `[mmu]`: the emulated MMU.
    public struct MMU: Sendable, Hashable {
        /// `mmu.enabled`: CPUs run processes whose stores go through page tables, and dirty bits
        /// live in page-table entries; off, stores mark a per-frame bitmap directly.
        public var enabled: Bool = true
        /// `mmu.huge_share`: the share of mapped regions given a 2 MiB page.
        public var hugeShare: Double = 0.25
    }

    /// `[tracking]`: the dirty tracker.
    public struct Tracking: Sendable, Hashable {
        /// `tracking.departing_hook`: record the dirty bit of a page-table entry that goes away
        /// (unmap, remap, copy-on-write break, exit). `false` is a negative control only.
        public var departingHook: Bool = true
    }

    /// `[dma]`: the DMA engine.
    public struct DMA: Sendable, Hashable {
        /// `dma.rate`: bytes written a second; 0 B/s switches the engine off.
        public var rate: ByteRate = .limited(bytesPerSecond: 16 << 20)
        /// `dma.block_size`: bytes of one DMA transfer (a power of two, one frame to 2 MiB).
        public var blockSize: Int = 64 << 10
        /// `dma.dual_write`: write both modules at once. `false` is a negative control only.
        public var dualWrite: Bool = true
    }

    /// `[fault]`: faults injected on purpose, for tests of the safety nets only.
    public struct Fault: Sendable, Hashable {
        /// `fault.flip_spare_bit`: flip one bit of the spare right after the final copy, which
        /// verify must catch.
        public var flipSpareBit: Bool = false
        /// `fault.hang_after_pass`: after this pass the engine stops making progress (0: never),
        /// so that a watchdog can be seen to act.
        public var hangAfterPass: Int = 0
    }

    /// `[hardware]`.
    public var hardware = Hardware()
    /// `[memory]`.
    public var memory = Memory()
    /// `[duplex]`.
    public var duplex = Duplex()
    /// `[workload]`.
    public var workload = Workload()
    /// `[mmu]`.
    public var mmu = MMU()
    /// `[tracking]`.
    public var tracking = Tracking()
    /// `[dma]`.
    public var dma = DMA()
    /// `[fault]`.
    public var fault = Fault()

    /// The built-in defaults.
    public init() {}

    /// The value of `key` (`section.key`, one of ``ConfigurationLoader/knownKeys``) as the file
    /// would write it, for messages that say what a reload changed.
    public func value(forKey key: String) -> String {
        switch key {
        case "hardware.backend": "\"\(hardware.backend.rawValue)\""
        case "memory.size": "\"\(ByteCount.format(memory.size))\""
        case "memory.backing": "\"\(memory.backing.rawValue)\""
        case "memory.state_dir": "\"\(memory.stateDirectory)\""
        case "duplex.threshold_frames": "\(duplex.thresholdFrames)"
        case "duplex.max_passes": "\(duplex.maxPasses)"
        case "duplex.min_progress": "\(duplex.minProgress)"
        case "duplex.verify_in_blackout": "\(duplex.verifyInBlackout)"
        case "workload.pattern": "\"\(workload.pattern.rawValue)\""
        case "workload.cpus": "\(workload.cpus)"
        case "workload.rate": "\"\(workload.rate)\""
        case "workload.seed": "\(workload.seed)"
        case "workload.hot_fraction": "\(workload.hotFraction)"
        case "workload.hot_share": "\(workload.hotShare)"
        case "workload.store_size": "\"\(ByteCount.format(workload.storeSize))\""
        case "workload.trace": "\"\(workload.trace)\""
        case "workload.churn": "\"\(ChurnRate.format(workload.churn))\""
        case "mmu.enabled": "\(mmu.enabled)"
        case "mmu.huge_share": "\(mmu.hugeShare)"
        case "tracking.departing_hook": "\(tracking.departingHook)"
        case "dma.rate": "\"\(dma.rate)\""
        case "dma.block_size": "\"\(ByteCount.format(dma.blockSize))\""
        case "dma.dual_write": "\(dma.dualWrite)"
        case "fault.flip_spare_bit": "\(fault.flipSpareBit)"
        case "fault.hang_after_pass": "\(fault.hangAfterPass)"
        default: preconditionFailure("unknown configuration key \(key)")
        }
    }

    /// The keys whose values differ between this configuration and `other`, in file order.
    public func changedKeys(comparedTo other: MirrordConfiguration) -> [String] {
        ConfigurationLoader.knownKeys.filter { value(forKey: $0) != other.value(forKey: $0) }
    }

    /// Whether a running daemon can apply a new value of `key` without a restart: the `[duplex]`
    /// keys take effect at the next pass (or the next duplex); the others shape the machine.
    public static func isReloadable(_ key: String) -> Bool {
        key.hasPrefix("duplex.")
    }

    /// The engine policy this configuration asks for.
    public var duplexPolicy: DuplexPolicy {
        DuplexPolicy(
            thresholdFrames: duplex.thresholdFrames, maxPasses: duplex.maxPasses,
            minProgress: duplex.minProgress, dmaDualWrite: dma.dualWrite,
            verifyFinalFramesInBlackout: duplex.verifyInBlackout)
    }
}
