import MirrorCore
import Testing

@testable import MirrorEmulation

/// The running count (`dirtyFrameCount`) ends the passes, so it must count frames, exactly: a
/// dirty 2 MiB page is 512 frames, and a frame that is both in the tracking bitvector and dirty in
/// a page table is one frame.
@Suite("The running dirty count is exact")
struct RunningCountTests {
    func frames(_ machine: EmulatedMachine, _ flags: HarvestFlags) throws -> [Int] {
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: machine.geometry.frameCount)
        defer { out.deallocate() }
        let result = try machine.harvest(frames: machine.geometry.allFrames, flags: flags, into: out)
        return out[0..<result.reported].map { Int($0) }
    }

    @Test("a dirty huge page counts 512 frames, as many as the harvest reports")
    func hugePage() throws {
        var options = quietOptions(megabytes: 64)
        options.mmu.hugeShare = 1
        let machine = try EmulatedMachine(options: options)
        let driver = MachineDriver(machine: machine)
        let process = try driver.createProcess(pages: 16 * MachineDriver.pagesPerRegion)
        for region in 0..<10 { try driver.store(process, page: region * 512, huge: true) }
        try machine.startTracking()
        #expect(machine.dirtyFrameCount == 0)
        for region in 0..<10 { try driver.store(process, page: region * 512 + 3, huge: true) }
        #expect(machine.dirtyFrameCount == 5_120, "10 dirty huge pages are 5120 frames")
        #expect(try frames(machine, .get).count == 5_120)
        #expect(machine.dirtyFrameCount == 5_120, "a get-only harvest changes nothing")
        #expect(try frames(machine, .getAndClear).count == 5_120)
        #expect(machine.dirtyFrameCount == 0)
    }

    @Test("a get-only harvest does not count a frame twice")
    func getOnly() throws {
        let machine = try EmulatedMachine(options: quietOptions())
        let driver = MachineDriver(machine: machine)
        let process = try driver.createProcess()
        for page in [1, 2, 700] { try driver.store(process, page: page) }
        try machine.startTracking()
        for page in [1, 2, 700] { try driver.store(process, page: page) }
        #expect(machine.dirtyFrameCount == 3)
        #expect(try frames(machine, .get).count == 3)
        #expect(machine.dirtyFrameCount == 3)
        #expect(try frames(machine, .get).count == 3)
        #expect(machine.dirtyFrameCount == 3)
        #expect(try frames(machine, .getAndClear).count == 3)
        #expect(machine.dirtyFrameCount == 0)
    }

    @Test("copy-on-write, a departing entry and a kernel write to a dirty frame count each frame once")
    func overlaps() throws {
        let machine = try EmulatedMachine(options: quietOptions())
        let driver = MachineDriver(machine: machine)
        let parent = try driver.createProcess()
        for page in [10, 11, 600] { try driver.store(parent, page: page) }
        try machine.startTracking()
        try driver.store(parent, page: 10)
        let child = try driver.fork(parent)  // the child's table copies the dirty bit of page 10
        let copy = try driver.store(child, page: 10)  // a copy-on-write copy: a kernel write, then a store
        try driver.store(parent, page: 600)
        try driver.unmap(parent, region: 1)  // page 600's dirty entry departs into the bitvector
        let reported = try frames(machine, .get)
        #expect(reported.contains(copy))
        #expect(machine.dirtyFrameCount == reported.count)
        #expect(Set(reported).count == reported.count)
    }

    @Test("without the MMU, the bitvector's count is the harvest's")
    func bitmapOnly() throws {
        let machine = try EmulatedMachine(options: quietOptions(mmu: false))
        let driver = MachineDriver(machine: machine)
        try machine.startTracking()
        for frame in [5, 5, 6, 4095] { driver.store(frame: frame) }
        #expect(machine.dirtyFrameCount == 3)
        #expect(try frames(machine, .get) == [5, 6, 4095])
        #expect(machine.dirtyFrameCount == 3)
        _ = try frames(machine, .getAndClear)
        #expect(machine.dirtyFrameCount == 0)
    }
}
