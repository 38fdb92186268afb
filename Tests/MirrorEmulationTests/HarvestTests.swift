import MirrorCore
import Testing

@testable import MirrorEmulation

@Suite("Harvest: the get-and-clear semantics of the pagemap ioctl")
struct HarvestTests {
    /// A bitvector of `frames` frames with `dirty` marked.
    func bitmap(frames: Int = 1_000, dirty: [Int]) -> TrackingBitmap {
        let map = TrackingBitmap(frameCount: frames, writers: 1)
        for f in dirty { map.markDirty(f, writer: 0) }
        return map
    }

    func harvest(_ map: TrackingBitmap, _ range: Range<Int>, get: Bool = true, clear: Bool = true, capacity: Int = 64)
        -> (frames: [Int], result: HarvestResult)
    {
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: capacity)
        defer { out.deallocate() }
        let result = map.harvest(range, get: get, clear: clear, into: out)
        return (out[0..<result.reported].map { Int($0) }, result)
    }

    @Test(
        "against a plain model: random bitmaps, ranges, capacities and flags give the same frames, counts and leftovers"
    )
    func againstModel() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<400 {
            let frames = Int.random(in: 1...2_000, using: &random)
            let density = [0.001, 0.01, 0.1, 0.5, 1.0].randomElement(using: &random)!
            let dirty = (0..<frames).filter { _ in Double.random(in: 0..<1, using: &random) < density }
            let map = bitmap(frames: frames, dirty: dirty)
            let lower = Int.random(in: 0..<frames, using: &random)
            let range = lower..<Int.random(in: lower + 1...frames, using: &random)
            let capacity = [1, 5, 63, 64, 65, 200, 5_000].randomElement(using: &random)!
            let (get, clear) = [(true, true), (true, false), (false, true)].randomElement(using: &random)!
            let (reported, result) = harvest(map, range, get: get, clear: clear, capacity: capacity)
            // The model: the dirty frames in range, lowest first, up to the capacity when reporting.
            let inRange = dirty.filter { range.contains($0) }
            let expected = get ? Array(inRange.prefix(capacity)) : []
            #expect(
                reported == expected,
                "\(frames) frames, range \(range), capacity \(capacity), get \(get) clear \(clear)")
            let taken = get ? Set(expected) : Set(inRange)
            #expect(result.cleared == (clear ? taken.count : 0))
            let left = dirty.filter { !(clear && taken.contains($0)) }
            #expect(map.dirtyCount == left.count && left.allSatisfy(map.isDirty))
            if get && reported.count == capacity {
                #expect(result.scanEnd == reported.last! + 1, "a full output stops after its last frame")
            } else {
                #expect(result.scanEnd == range.upperBound)
            }
        }
    }

    @Test("an output that fills exactly at the end of a word stops there: the next word's first frame stays dirty")
    func fullAtWordEnd() {
        for capacity in [64, 128, 192] {
            let map = bitmap(frames: 1_024, dirty: Array(0..<1_024))
            let (frames, result) = harvest(map, 0..<1_024, capacity: capacity)
            #expect(frames == Array(0..<capacity))
            #expect(result.scanEnd == capacity, "capacity \(capacity)")
            #expect(map.isDirty(capacity) && map.dirtyCount == 1_024 - capacity)
        }
    }

    @Test("only frames inside the range are reported and cleared, across word boundaries")
    func range() {
        let map = bitmap(dirty: [3, 63, 64, 65, 127, 128, 500, 999])
        let (frames, result) = harvest(map, 63..<129)
        #expect(frames == [63, 64, 65, 127, 128])
        #expect(result.scanEnd == 129)
        #expect(result.cleared == 5)
        #expect(map.isDirty(3) && map.isDirty(500) && map.isDirty(999))
        #expect(!map.isDirty(64) && !map.isDirty(128))
        #expect(map.dirtyCount == 3)
    }

    @Test("a full output vector stops the call; the frames not reported stay dirty for the next call")
    func capacity() {
        let dirty = [1, 2, 3, 70, 71, 200, 900]
        let map = bitmap(dirty: dirty)
        let first = harvest(map, 0..<1_000, capacity: 4)
        #expect(first.frames == [1, 2, 3, 70])
        #expect(first.result.scanEnd == 71)
        #expect(map.isDirty(71) && map.isDirty(200) && map.isDirty(900))
        #expect(!map.isDirty(70))
        let second = harvest(map, first.result.scanEnd..<1_000, capacity: 4)
        #expect(second.frames == [71, 200, 900])
        #expect(second.result.scanEnd == 1_000)
        #expect(map.dirtyCount == 0)
    }

    @Test("a capacity smaller than one word's dirty bits takes the lowest ones first")
    func capacityInsideAWord() {
        let map = bitmap(dirty: Array(0..<64))
        let first = harvest(map, 0..<64, capacity: 10)
        #expect(first.frames == Array(0..<10))
        #expect(first.result.scanEnd == 10)
        #expect((10..<64).allSatisfy(map.isDirty))
        #expect(map.dirtyCount == 54)
    }

    @Test("get reports without clearing; clear clears without reporting; get-and-clear does both")
    func operations() {
        let map = bitmap(dirty: [5, 6, 700])
        let got = harvest(map, 0..<1_000, get: true, clear: false)
        #expect(got.frames == [5, 6, 700])
        #expect(got.result.cleared == 0)
        #expect(map.dirtyCount == 3 && map.isDirty(5))

        let cleared = harvest(map, 0..<10, get: false, clear: true)
        #expect(cleared.frames == [])
        #expect(cleared.result.cleared == 2)
        #expect(!map.isDirty(5) && map.isDirty(700))

        let both = harvest(map, 0..<1_000)
        #expect(both.frames == [700])
        #expect(map.dirtyCount == 0)
        #expect(harvest(map, 0..<1_000).frames == [])
    }

    @Test("marking an already dirty frame keeps the running count exact")
    func checkBeforeSet() {
        let map = bitmap(dirty: [9, 9, 9, 10])
        #expect(map.dirtyCount == 2)
    }
}

@Suite("Harvest arguments on the emulated machine")
struct HarvestArgumentTests {
    func quietMachine() throws -> EmulatedMachine {
        try EmulatedMachine(options: quietOptions(megabytes: 4))
    }

    @Test("unknown flag bits are rejected before anything changes")
    func unknownFlags() throws {
        let machine = try quietMachine()
        try machine.startTracking()
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 8)
        defer { out.deallocate() }
        #expect(throws: HarvestError.unknownFlags(0x4)) {
            try machine.harvest(frames: 0..<16, flags: HarvestFlags(rawValue: 0x7), into: out)
        }
        #expect(throws: HarvestError.noOperation) { try machine.harvest(frames: 0..<16, flags: [], into: out) }
        #expect(HarvestError.unknownFlags(0x4).description.contains("unknown flag bits 0x4"))
    }

    @Test("ranges outside the module, empty outputs and inactive tracking are rejected")
    func badArguments() throws {
        let machine = try quietMachine()
        let out = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: 8)
        defer { out.deallocate() }
        #expect(throws: HarvestError.trackingInactive) {
            try machine.harvest(frames: 0..<16, flags: .getAndClear, into: out)
        }
        try machine.startTracking()
        let frames = machine.geometry.frameCount
        #expect(throws: HarvestError.rangeOutOfBounds(0..<(frames + 1), frameCount: frames)) {
            try machine.harvest(frames: 0..<(frames + 1), flags: .getAndClear, into: out)
        }
        #expect(throws: HarvestError.emptyOutput) {
            try machine.harvest(frames: 0..<16, flags: .get, into: UnsafeMutableBufferPointer(start: nil, count: 0))
        }
        #expect(
            try machine.harvest(frames: 0..<16, flags: .clear, into: UnsafeMutableBufferPointer(start: nil, count: 0))
                .reported == 0)
    }
}
