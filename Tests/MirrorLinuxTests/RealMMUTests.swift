import Foundation
import Glibc
import MirrorCore
import MirrorEmulation
import Testing

@testable import MirrorLinux

/// Whether this kernel and process can track writes with userfaultfd + PAGEMAP_SCAN; the reason
/// is printed when the tests are skipped.
let realMMUAvailable: Bool = {
    switch RealMMUProbe.check() {
    case .success: return true
    case .failure(let error):
        print("skipping the uffd backend tests: \(error)")
        return false
    }
}()

@Suite("Real-MMU errors say what to do")
struct RealMMUErrorTests {
    @Test("a refused userfaultfd names the sysctl and the unit's system-call filter")
    func refused() {
        let message = UffdWriteTracker.openError(EPERM, step: "userfaultfd").description
        #expect(message.contains("vm.unprivileged_userfaultfd=1"))
        #expect(message.contains("SystemCallFilter=userfaultfd"))
    }

    @Test("a kernel without asynchronous write-protect is told it needs Linux 6.7+")
    func tooOld() {
        #expect(UffdWriteTracker.openError(EOPNOTSUPP, step: "features").description.contains("Linux 6.7+"))
    }
}

/// The kernel's limit on memory areas per process (vm.max_map_count).
let mapCountLimit: Int = {
    (try? String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8))
        .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? Int.max
}()

/// The test options for a machine whose CPUs' writes the real MMU tracks.
func realMMUOptions(seed: UInt64) -> EmulatedMachine.Options {
    var options = testOptions(seed: seed)
    options.mmu.enabled = false
    options.workload.churn = 0
    return options
}

/// Duplexes a busy machine tracked by `backend` and checks, by a comparison of our own, that the
/// spare equals the active module (in lockstep afterwards too).
func expectExactDuplex(_ backend: RealMMUBackend, seed: UInt64) throws {
    let machine = try EmulatedMachine(options: realMMUOptions(seed: seed), realMMU: backend)
    let summary = try duplex(machine, policy: testPolicy)
    #expect(summary.isDuplexed, "\(summary.message)")
    #expect(summary.backend == backend.rawValue)
    let dirtied = summary.passes.reduce(0) { $0 + $1.dirtyFrames } + (summary.blackout?.finalFrames ?? 0)
    #expect(dirtied > 0, "the workload dirtied nothing during the duplex: the test proves nothing")
    #expect(differingFrames(machine) == [])
}

extension MachineSuites {
    @Suite("The uffd backend: writes tracked by the real MMU", .enabled(if: realMMUAvailable))
    struct RealMMUTests {
        @Test("harvest reports written pages in order, honours the output capacity and leaves the rest written")
        func harvestSemantics() throws {
            let machine = try EmulatedMachine(options: quietOptions(mmu: false), realMMU: RealMMUBackend.uffd)
            try machine.startTracking()
            for frame in [3, 4, 5, 900, 4000] {
                machine.active.base.storeBytes(of: 7, toByteOffset: frame * 4096, as: UInt8.self)
            }
            // A DMA write through the other view is not tracked, as on real hardware.
            machine.active.alias.storeBytes(of: 9, toByteOffset: 77 * 4096, as: UInt8.self)
            let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 3)
            defer { out.deallocate() }
            let first = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: out)
            #expect(Array(out[0..<first.reported]) == [3, 4, 5])
            // The kernel may walk on past the last page it reported up to the next written one.
            #expect((6...900).contains(first.scanEnd))
            let rest = try machine.harvest(
                frames: first.scanEnd..<machine.geometry.frameCount, flags: .getAndClear, into: out)
            #expect(Array(out[0..<rest.reported]) == [900, 4000])
            let none = try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: out)
            #expect(none.reported == 0, "get-and-clear write-protected the reported pages again")
            machine.active.base.storeBytes(of: 8, toByteOffset: 900 * 4096, as: UInt8.self)
            let get = try machine.harvest(frames: 0..<1000, flags: .get, into: out)
            #expect(Array(out[0..<get.reported]) == [900])
            #expect(machine.dirtyFrameCount == 1, "get alone leaves the page written")
            _ = try machine.harvest(frames: 0..<1000, flags: .clear, into: out)
            #expect(machine.dirtyFrameCount == 0)
        }

        @Test("a duplex under CPU stores and DMA leaves the spare equal to the active", arguments: [UInt64(1), 2, 3])
        func duplex(seed: UInt64) throws {
            try expectExactDuplex(.uffd, seed: seed)
        }

        @Test("negative control: DMA through the untracked view without dual-write is caught by the verify")
        func dmaWithoutDualWrite() throws {
            let machine = try EmulatedMachine(options: realMMUOptions(seed: 4), realMMU: RealMMUBackend.uffd)
            var policy = testPolicy
            policy.dmaDualWrite = false
            let summary = try MirrorLinuxTests.duplex(machine, policy: policy, storesAfter: 0)
            #expect(summary.outcome == .failed(.verifyMismatch))
        }
    }

    @Suite("The mprotect backend: the userspace baseline")
    struct MprotectBackendTests {

        @Test("a duplex under CPU stores and DMA leaves the spare equal to the active", arguments: [UInt64(1), 2])
        func duplex(seed: UInt64) throws {
            try expectExactDuplex(.mprotect, seed: seed)
        }

        @Test(
            "past vm.max_map_count scattered written pages, the harvest fails with an error instead of crashing or under-reporting",
            .enabled(if: mapCountLimit <= 200_000, "vm.max_map_count is too large to reach in a test"))
        func mapCountLimitReached() throws {
            var options = quietOptions(mmu: false)
            // Every other page written splits one area into three: limit + margin written pages.
            options.memorySize = (mapCountLimit + 8_192) * 2 * 4096 / (2 << 20) * (2 << 20)
            let machine = try EmulatedMachine(options: options, realMMU: RealMMUBackend.mprotect)
            try machine.startTracking()
            // Every other page: each write splits a protection area in two.
            for page in stride(from: 0, to: machine.geometry.frameCount, by: 2) {
                machine.active.base.storeBytes(of: 1, toByteOffset: page * 4096, as: UInt8.self)
            }
            let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
            defer { out.deallocate() }
            let error = #expect(throws: HarvestError.self) {
                try machine.harvest(frames: machine.geometry.allFrames, flags: .getAndClear, into: out)
            }
            #expect("\(error.map { "\($0)" } ?? "")".contains("max_map_count"))
            machine.stopTracking()
        }
    }
}
