import CMirrorShims
import Foundation
import MirrorCore
import Synchronization
import Testing

@testable import MirrorEmulation

/// The copy paths shared with the copy helper: every piece claimed once, exactly the listed frames
/// copied, whichever thread copies what.
@Suite("Copies shared with the copy helper")
struct ModuleCopierTests {
    /// Where the helper ran its job, and whether the threads keeping the other cores busy go on.
    final class Cores: Sendable {
        let helperCPU = Atomic<Int32>(-1)
        let busy = Atomic<Bool>(true)
    }

    @Test(
        "the helper runs its job on another core than the one of the thread that handed it over, even with every core busy"
    )
    func helperKeptOffCallersCore() throws {
        let cpus = Int(mirrord_allowed_cpus())
        guard cpus >= 2 else { return }  // nowhere else to run
        let cores = Cores()
        // A spinning thread for every other core: the kernel then tends to wake the helper on its
        // waker's core (the caller spins too, as it copies), where the two would take turns.
        let spinners = (1..<cpus).map { _ in
            Thread { while cores.busy.load(ordering: .relaxed) { mirrord_cpu_relax() } }
        }
        for spinner in spinners { spinner.start() }
        defer { cores.busy.store(false, ordering: .relaxed) }
        let helper = try CopyHelper(name: "test-copy") { job in
            if case .range = job { cores.helperCPU.store(mirrord_current_cpu(), ordering: .releasing) }
        }
        defer { helper.stop() }
        for _ in 0..<20 {
            cores.helperCPU.store(-1, ordering: .relaxed)
            // The caller's side waits for the helper to claim the job, so that it is not withdrawn.
            let waited = helper.run(.range(0..<1)) {
                while cores.helperCPU.load(ordering: .acquiring) < 0 { mirrord_cpu_relax() }
            }
            #expect(waited != nil)
            #expect(helper.keptOffCPU >= 0)
            #expect(
                cores.helperCPU.load(ordering: .acquiring) != helper.keptOffCPU,
                "the helper ran on CPU \(cores.helperCPU.load(ordering: .acquiring)), the one it was kept off")
        }
    }

    /// The bench says where a long final copy went; the helper's wake-up is one of the causes.
    @Test("the helper's wake-up is recorded for a job it claimed, and none for a job withdrawn")
    func helperWakeRecorded() throws {
        let claimed = Atomic<Bool>(false)
        let helper = try CopyHelper(name: "test-copy") { _ in claimed.store(true, ordering: .releasing) }
        defer { helper.stop() }
        #expect(helper.jobsPosted == 0)
        #expect(helper.lastWakeNanoseconds == nil)
        // The caller's side waits until the helper has claimed the job: a wake-up is recorded.
        _ = helper.run(.range(0..<1)) { while !claimed.load(ordering: .acquiring) { mirrord_cpu_relax() } }
        #expect(helper.jobsPosted == 1)
        let wake = try #require(helper.lastWakeNanoseconds)
        #expect(wake < 600_000_000_000, "a wake-up of \(wake) ns is not a duration")
        // A job the caller finishes at once is withdrawn unless the helper is quicker: either way
        // the record is this job's (none when withdrawn), never the last one's.
        claimed.store(false, ordering: .relaxed)
        _ = helper.run(.range(0..<1)) {}
        #expect(helper.jobsPosted == 2)
        #expect((helper.lastWakeNanoseconds == nil) == !claimed.load(ordering: .acquiring))
    }

    @Test("the two ends claim every piece exactly once and stop where they meet")
    func piecesMeet() {
        let pieces = SharedPieces()
        pieces.reset(count: 7)
        var claimed: [Int] = []
        // Uneven turns, as when one thread is slower: three from the front for one from the back.
        var turn = 0
        while true {
            let piece = turn % 4 == 3 ? pieces.claimBack() : pieces.claimFront()
            guard let piece else { break }
            claimed.append(piece)
            turn += 1
        }
        #expect(claimed == [0, 1, 2, 6, 3, 4, 5])
        #expect(pieces.claimFront() == nil && pieces.claimBack() == nil)
        pieces.reset(count: 0)
        #expect(pieces.claimBack() == nil)
    }

    @Test("two threads taking from opposite ends share out every piece once")
    func piecesConcurrently() {
        let pieces = SharedPieces()
        let count = 100_000
        pieces.reset(count: count)
        let seen = Mutex([Int](repeating: 0, count: count))
        let back = Thread {
            var mine: [Int] = []
            while let piece = pieces.claimBack() { mine.append(piece) }
            seen.withLock { for piece in mine { $0[piece] += 1 } }
        }
        back.start()
        var mine: [Int] = []
        while let piece = pieces.claimFront() { mine.append(piece) }
        seen.withLock { for piece in mine { $0[piece] += 1 } }
        waitUntil("the back thread is done") { seen.withLock { $0.reduce(0, +) } == count }
        #expect(seen.withLock { $0.allSatisfy { $0 == 1 } })
    }

    /// A quiet machine whose active module holds a pattern and whose spare is zero.
    func patterned() throws -> EmulatedMachine {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let words = machine.geometry.byteCount / 8
        for i in 0..<words { machine.active.base.storeBytes(of: UInt64(i) | 1, toByteOffset: i * 8, as: UInt64.self) }
        return machine
    }

    @Test("a long list shared with the helper copies exactly the listed frames")
    func listCopy() throws {
        let machine = try patterned()
        // Long enough to be shared; runs of adjacent frames broken at pieces and stripes.
        let listed = Array(stride(from: 5, to: machine.geometry.frameCount, by: 3)) + [machine.geometry.frameCount - 1]
        #expect(listed.count >= ModuleCopier.splitFrames * 2)
        let list = listed.map(UInt32.init)
        list.withUnsafeBufferPointer { machine.copyToSpare(frameList: $0) }
        let differing = Set(differingFrames(machine))
        #expect(differing == Set(0..<machine.geometry.frameCount).subtracting(listed))
    }

    @Test("a range shared with the helper, starting and ending inside stripes, is copied whole and nothing beyond")
    func rangeCopy() throws {
        let machine = try patterned()
        let range = 100..<(machine.geometry.frameCount - 77)
        machine.copyToSpare(frames: range)
        #expect(differingFrames(machine) == Array(0..<100) + Array(range.upperBound..<machine.geometry.frameCount))
    }

    @Test("two copies at once: one shares with the helper, the other finds it busy and copies alone")
    func concurrentCopies() throws {
        let machine = try patterned()
        let frames = machine.geometry.frameCount
        let even = (0..<frames).filter { $0 % 2 == 0 }.map(UInt32.init)
        let odd = (0..<frames).filter { $0 % 2 == 1 }.map(UInt32.init)
        let done = Atomic<Bool>(false)
        let other = Thread {
            odd.withUnsafeBufferPointer { machine.copyToSpare(frameList: $0) }
            done.store(true, ordering: .releasing)
        }
        other.start()
        even.withUnsafeBufferPointer { machine.copyToSpare(frameList: $0) }
        waitUntil("the other copy is done") { done.load(ordering: .acquiring) }
        #expect(differingFrames(machine) == [])
    }
}
