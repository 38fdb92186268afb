import MirrorCore
import Testing

@testable import MirrorEmulation

extension MachineSuites {
    /// The throttle paces the CPU threads themselves, so it works whatever tracks their writes:
    /// the bitmap or the emulated MMU here; the real MMU's write faults (`uffd`, `mprotect`) in
    /// MirrorLinuxTests (RealMMUThrottleTests).
    @Suite("Throttle: the CPU threads are paced on every emulated backend")
    struct ThrottleTests {
        enum Backend: String, CaseIterable, Sendable {
            case bitmap
            case emulatedMMU = "emulated MMU"
        }

        /// Two unlimited CPUs on `backend`, the first throttled by `fraction`; returns each CPU's
        /// stores once the unthrottled one has made a million. Counts, not times: the ratio of
        /// the two is what the throttle changes.
        func stores(on backend: Backend, throttle fraction: Double) throws -> (throttled: UInt64, free: UInt64) {
            var options = testOptions(pattern: .uniform)
            options.workload.rate = .unlimited
            options.dma.rate = .limited(bytesPerSecond: 0)
            options.mmu.enabled = backend == .emulatedMMU
            if backend != .emulatedMMU { options.workload.churn = 0 }
            let machine = try EmulatedMachine(options: options)
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
            arguments: Backend.allCases)
        func throttled(backend: Backend) throws {
            let (throttled, free) = try stores(on: backend, throttle: 0.95)
            #expect(throttled * 4 < free, "\(backend.rawValue): \(throttled) throttled against \(free) free")
        }

        @Test(
            "negative control: unthrottled, the twins keep pace with each other",
            arguments: [Backend.bitmap, .emulatedMMU])
        func unthrottled(backend: Backend) throws {
            let (first, second) = try stores(on: backend, throttle: 0)
            #expect(first * 4 >= second, "\(backend.rawValue): \(first) against \(second)")
        }
    }
}

extension MachineSuites {
    /// A writer thread that has not started (or could not be) must not hold up the controller:
    /// tracking's shootdown and the blackout's stop wait only for writers that are running.
    @Suite("Writers not yet started count as stopped")
    struct UnstartedWriterTests {
        @Test("tracking, a blackout and lockstep work on a machine whose CPUs and DMA never started")
        func unstarted() throws {
            var options = testOptions()
            options.dma.rate = .limited(bytesPerSecond: 64 << 20)
            let machine = try EmulatedMachine(options: options)
            defer { machine.shutdown() }
            try machine.startTracking()
            _ = try machine.enterBlackout()
            #expect(machine.isInBlackout)
            machine.setLockstep(true)
            machine.leaveBlackout()
            #expect(!machine.isInBlackout)
            machine.stopTracking()
        }
    }
}
