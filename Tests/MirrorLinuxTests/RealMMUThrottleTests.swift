import MirrorCore
import MirrorEmulation
import MirrorLinux
import Testing

extension MachineSuites {
    /// The throttle paces the CPU threads themselves, so it works whatever tracks their writes:
    /// here the real MMU's write faults (`uffd`, `mprotect`); the bitmap and the emulated MMU in
    /// MirrorEmulationTests (ThrottleTests).
    @Suite("Throttle: the CPU threads are paced on the real-MMU backends")
    struct RealMMUThrottleTests {
        /// Two unlimited CPUs tracked by `backend`, the first throttled by `fraction`; returns each
        /// CPU's stores once the unthrottled one has made a million. Counts, not times: the ratio
        /// of the two is what the throttle changes.
        func stores(on backend: RealMMUBackend, throttle fraction: Double) throws -> (throttled: UInt64, free: UInt64) {
            var options = testOptions(pattern: .uniform)
            options.workload.rate = .unlimited
            options.dma.rate = .limited(bytesPerSecond: 0)
            options.mmu.enabled = false
            options.workload.churn = 0
            let machine = try EmulatedMachine(options: options, realMMU: backend)
            defer { machine.shutdown() }
            try machine.startTracking()
            machine.setThrottle(cpu: 0, fraction: fraction)
            try machine.start()
            waitUntil("the unthrottled CPU made a million stores") { machine.cpuCounters(1).stores >= 1_000_000 }
            let result = (machine.cpuCounters(0).stores, machine.cpuCounters(1).stores)
            machine.stopTracking()
            return result
        }

        @Test(
            "a CPU throttled by 95 % makes far fewer stores than its unthrottled twin",
            arguments: RealMMUBackend.allCases)
        func throttled(backend: RealMMUBackend) throws {
            guard backend != .uffd || realMMUAvailable else { return }
            let (throttled, free) = try stores(on: backend, throttle: 0.95)
            #expect(throttled * 4 < free, "\(backend.rawValue): \(throttled) throttled against \(free) free")
        }
    }
}
