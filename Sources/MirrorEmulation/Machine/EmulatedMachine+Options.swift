import MirrorCore

extension EmulatedMachine {
    /// Everything that shapes an emulated machine: its memory, the workload its CPUs run, its
    /// MMU, its DMA engine and the faults injected on purpose. The defaults are those of
    /// `config/mirrord.conf`; the configuration file is read elsewhere and handed in as these.
    public struct Options: Sendable, Hashable {
        /// What the two modules are made of.
        public enum Backing: String, Sendable, Hashable, CaseIterable {
            /// Anonymous memory, gone when the process exits.
            case anonymous
            /// Two image files, `active.img` and `spare.img` in ``Options/stateDirectory``, mapped
            /// shared, so that outside tools can compare them after a run.
            case file
        }

        /// Where the active module's contents come from.
        public enum ActiveMemory: Sendable, Hashable {
            /// Filled with frame-distinct contents, the spare with others: a machine about to be
            /// duplexed.
            case filled
            /// The file at `path` mapped private from `offset` (page-aligned), copy-on-write: the
            /// machine runs from the file's contents without copying them, and the file keeps them
            /// (a takeover from the export's image). ``EmulatedMachine/Options/backing`` does not apply.
            case image(path: String, offset: UInt64)
            /// Anonymous and not filled: the caller writes the contents before ``EmulatedMachine/start()``
            /// (a takeover reading the image over the network). ``EmulatedMachine/Options/backing`` does not apply.
            case provided

            /// Whether the machine starts from memory it was given, simplex: its spare is anonymous,
            /// never filled, and removed from the start (no spare to duplex to until one is installed).
            public var isGiven: Bool { self != .filled }
        }

        /// Where the CPUs' stores go.
        public enum Pattern: String, Sendable, Hashable, CaseIterable {
            /// Every frame alike.
            case uniform
            /// A hot fraction of frames takes most stores.
            case hotset
            /// Frame after frame, wrapping around.
            case sequential
            /// Replay of a `valgrind --tool=lackey --trace-mem=yes` log (``Workload/tracePath``).
            case trace
        }

        /// What the emulated CPUs run.
        public struct Workload: Sendable, Hashable {
            /// Where the stores go.
            public var pattern: Pattern = .hotset
            /// How many CPU threads store.
            public var cpus: Int = 2
            /// Bytes stored a second, over all CPUs (shared evenly), unless ``cpuRates`` gives each
            /// CPU its own.
            public var rate: ByteRate = .limited(bytesPerSecond: 32 << 20)
            /// Each CPU's own rate, one a CPU (a mixed workload: one CPU writing hard, the others
            /// lightly); empty to share ``rate`` evenly.
            public var cpuRates: [ByteRate] = []
            /// Each CPU's own pattern, one a CPU (a loader writing everywhere beside CPUs rewriting
            /// a small hot set); empty for ``pattern`` on every CPU.
            public var cpuPatterns: [Pattern] = []
            /// Makes the store sequence reproducible.
            public var seed: UInt64 = 1
            /// The share of frames in the hot set (``Pattern/hotset``).
            public var hotFraction: Double = 0.05
            /// The share of stores that go to the hot set (``Pattern/hotset``).
            public var hotShare: Double = 0.9
            /// Bytes written by one store (a power of two, 8 B to one frame).
            public var storeSize: Int = 64
            /// The lackey log replayed by ``Pattern/trace``.
            public var tracePath: String = ""
            /// Page-table operations a second over all CPUs (map, unmap, remap, fork, exit); 0
            /// for none. Needs the MMU.
            public var churn: Double = 200

            /// The defaults.
            public init() {}

            /// The pattern of CPU `cpu`.
            public func pattern(cpu: Int) -> Pattern {
                PerCPU.value(cpu: cpu, own: cpuPatterns, shared: pattern)
            }

            /// Whether some CPU replays the trace.
            public var replaysTrace: Bool {
                PerCPU.any(cpus: cpus, own: cpuPatterns, shared: pattern) { $0 == .trace }
            }

            /// Bytes a second for CPU `cpu`, or nil for no limit.
            public func bytesPerSecond(cpu: Int) -> Int? {
                if cpu < cpuRates.count { return cpuRates[cpu].bytesPerSecond }
                return rate.bytesPerSecond.map { max(1, $0 / max(1, cpus)) }
            }
        }

        /// The emulated MMU.
        public struct MMU: Sendable, Hashable {
            /// CPUs run processes whose stores go through page tables, and dirty bits live in
            /// page-table entries; off, stores mark a per-frame bitvector directly.
            public var enabled: Bool = true
            /// The share of mapped regions given a 2 MiB page.
            public var hugeShare: Double = 0.25
            /// Record the dirty bit of a page-table entry that goes away (unmap, remap,
            /// copy-on-write break, exit). Off only as a negative control.
            public var departingHook: Bool = true
            /// Split a dirty huge page into 512 entries (keeping its dirty state) when a harvest
            /// clears it: required when the harvest covers only part of it (the pagemap ioctl's
            /// rule), and done for all, as KVM's dirty logging does. Off only as a negative control.
            package var splitHugePages = true
            /// Move a cleared hardware dirty bit into SOFTDIRTY (the Stratus rule). Off only as a
            /// negative control.
            package var softDirty = true

            /// The defaults.
            public init() {}
        }

        /// The DMA engine.
        public struct DMA: Sendable, Hashable {
            /// Bytes written a second; 0 B/s switches the engine off.
            public var rate: ByteRate = .limited(bytesPerSecond: 16 << 20)
            /// Bytes of one DMA transfer (a power of two, one frame to 2 MiB).
            public var blockSize: Int = 64 << 10

            /// The defaults.
            public init() {}
        }

        /// Faults injected on purpose, for tests of the safety nets only.
        public struct Faults: Sendable, Hashable {
            /// Flip one bit of the spare right after the final copy, which the verify must catch.
            public var flipSpareBit: Bool = false
            /// Hold every blackout this long (nanoseconds; 0: no) with the CPUs and DMA stopped,
            /// so that a stop can be seen to arrive inside one.
            public var blackoutStallNanoseconds: UInt64 = 0
            /// Hold the start of every full copy this long (nanoseconds; 0: no), so that a stop
            /// can be seen to arrive inside one whatever the copy's speed.
            public var fullCopyStallNanoseconds: UInt64 = 0

            /// The defaults.
            public init() {}
        }

        /// Bytes in each module (a whole number of frames).
        public var memorySize: Int = 1 << 30
        /// What the modules are made of.
        public var backing: Backing = .anonymous
        /// Where the active module's contents come from (a takeover gives them).
        public var activeMemory: ActiveMemory = .filled
        /// Where file-backed modules live.
        public var stateDirectory: String = "/var/lib/mirrord"
        /// What the CPUs run.
        public var workload = Workload()
        /// The emulated MMU.
        public var mmu = MMU()
        /// The DMA engine.
        public var dma = DMA()
        /// Faults injected on purpose.
        public var faults = Faults()
        /// Whether the workload keeps a ``StoreRecord`` of the last value stored in each unit
        /// (tests: it costs a store per store and 8 bytes per unit).
        public var recordsStores = false

        /// The frame size; fixed at 4 KiB, as on x86-64.
        public var frameSize: Int { Self.frameSize }
        /// The frame size; fixed at 4 KiB, as on x86-64.
        public static let frameSize = MemoryGeometry.standardFrameSize

        /// The defaults.
        public init() {}

        /// The writers of each frame and whether they fit (the rule the configuration check asks too).
        package var writerLayout: WriterLayout {
            WriterLayout(cpus: workload.cpus, dmaRate: dma.rate, storeSize: workload.storeSize, frameSize: frameSize)
        }

        /// The writers that share each frame: the CPUs, and the DMA engine when it runs.
        public var writerCount: Int { writerLayout.writerCount }

        /// Why these options cannot build a machine because its writers do not fit in a frame
        /// (each needs its own units of `workload.store_size`, see `LaneLayout`), or nil. The
        /// machine and the configuration check ask the same question, `WriterLayout.problem`.
        public var writerLayoutProblem: String? { writerLayout.problem }
    }
}
