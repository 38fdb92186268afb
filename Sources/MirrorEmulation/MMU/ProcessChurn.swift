import MirrorCore

/// The processes one emulated CPU runs, and the page-table churn they cause at a set rate:
/// mapping and unmapping 2 MiB regions, moving pages to other frames, forking and exiting
/// (`workload.churn`, operations per second). Every operation edits page tables through
/// ``EmulatedMMU`` and so exercises the departing-entry, copy-on-write and huge-page paths.
struct ProcessChurn {
    /// The most processes one CPU runs at once (fork adds, exit removes).
    static let maximumProcesses = 4

    private(set) var processes: [AddressSpace] = []
    /// A process whose exit a blackout interrupted: no CPU runs it any more, the rest of its exit
    /// goes on at the next ``run(now:interrupted:)``.
    private(set) var exiting: AddressSpace?
    private var random: WyRandom
    private let mmu: EmulatedMMU
    private let cpu: Int
    private let pageCount: Int
    private let nanosPerOperation: UInt64
    private var due: UInt64

    init(mmu: EmulatedMMU, cpu: Int, pageCount: Int, operationsPerSecond: Double, seed: UInt64) {
        self.mmu = mmu
        self.cpu = cpu
        self.pageCount = pageCount
        random = WyRandom(seed: seed ^ 0xC4_0C4)
        nanosPerOperation = operationsPerSecond > 0 ? UInt64(1e9 / operationsPerSecond) : 0
        due = MonotonicClock.nanoseconds() &+ nanosPerOperation
        if let first = mmu.createProcess(cpu: cpu, pageCount: pageCount) {
            // A workload that has run for a while has its pages: map them all now, so that the
            // machine starts warm instead of faulting its way in while a duplex measures it.
            mmu.populate(first, random: &random)
            processes.append(first)
        }
    }

    /// Performs the operations that have come due, stopping early once `interrupted` says so (a
    /// blackout asked for: the CPU must reach its checkpoint; the rest stay due); returns whether
    /// page tables changed (the CPU then flushes its translation cache).
    mutating func run(now: UInt64, interrupted: () -> Bool = { false }) -> Bool {
        var changed = false
        if let space = exiting {
            // An exit a blackout interrupted goes on first (it is not an operation come due).
            changed = true
            guard mmu.exit(space, interrupted: interrupted) else { return true }
            exiting = nil
        }
        guard nanosPerOperation > 0, now >= due else { return changed }
        var budget = 16  // after a long stall, catch up a little, not all at once
        while now >= due && budget > 0 && exiting == nil && !interrupted() {
            changed = operate(interrupted: interrupted) || changed
            due &+= nanosPerOperation
            budget -= 1
        }
        // Out of budget with operations still due: drop the backlog. Interrupted: they stay due.
        if budget == 0 && now >= due { due = now &+ nanosPerOperation }
        return changed
    }

    /// One operation, chosen at random: map 35 %, unmap 25 %, remap 36 %, fork 2 %, exit 2 %. Forks
    /// are rare, as on a real server: each one makes every page its processes then write a
    /// copy-on-write copy.
    private mutating func operate(interrupted: () -> Bool) -> Bool {
        guard !processes.isEmpty else { return false }
        let r = random.next()
        let space = processes[scaled(r, processes.count)]
        let choice = Int((r >> 32) % 100)
        let regions = space.regionCount
        switch choice {
        case 0..<35:
            let region = scaled(random.next(), regions)
            let huge = unitFraction(random.next()) < mmu.options.hugeShare
            return mmu.mapRegion(space, region: region, huge: huge)
        case 35..<60:
            guard let region = space.regions.randomElement(using: &random) else { return false }
            mmu.unmapRegion(space, region: region)
            return true
        case 60..<96:
            guard let region = space.regions.randomElement(using: &random) else { return false }
            let page = region * EmulatedMMU.pagesPerTable + scaled(random.next(), EmulatedMMU.pagesPerTable)
            return mmu.remapPage(space, page: page)
        case 96..<98:
            guard processes.count < Self.maximumProcesses, let child = mmu.fork(space) else { return false }
            processes.append(child)
            return true
        default:
            guard processes.count > 1 else { return false }
            processes.removeAll { $0 === space }
            // Interrupted by a blackout asked for, the exit goes on at the next run.
            if !mmu.exit(space, interrupted: interrupted) { exiting = space }
            return true
        }
    }

}

extension WyRandom: RandomNumberGenerator {}
