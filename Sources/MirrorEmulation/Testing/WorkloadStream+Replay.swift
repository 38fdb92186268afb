extension WorkloadStream {
    /// Replays the first `count` stores of the stream, recording in `last` (one entry a unit of
    /// memory, `unitsPerFrame` a frame) the number of the last store (1-based) to land in each
    /// unit. One switch, then a loop specialised for the pattern.
    func replay(_ count: UInt64, unitsPerFrame: Int, storeShift: Int, into last: UnsafeMutablePointer<UInt64>) {
        switch self {
        case .uniform(let s): Self.replay(s, count, unitsPerFrame, storeShift, last)
        case .hotset(let s): Self.replay(s, count, unitsPerFrame, storeShift, last)
        case .sequential(let s): Self.replay(s, count, unitsPerFrame, storeShift, last)
        case .trace(let s): Self.replay(s, count, unitsPerFrame, storeShift, last)
        }
    }

    private static func replay<S: StoreStream>(
        _ stream: S, _ count: UInt64, _ unitsPerFrame: Int, _ storeShift: Int, _ last: UnsafeMutablePointer<UInt64>
    ) {
        var stream = stream
        var n: UInt64 = 0
        while n < count {
            n &+= 1
            let (frame, offset) = stream.next()
            last[frame &* unitsPerFrame &+ offset &>> storeShift] = n
        }
    }

    /// Where store `number` (1-based) of the stream lands, found without replaying the ones
    /// before it.
    func store(number: UInt64) -> (frame: Int, offset: Int) {
        switch self {
        case .uniform(var s):
            s.skip(number - 1)
            return s.next()
        case .hotset(var s):
            s.skip(number - 1)
            return s.next()
        case .sequential(var s):
            s.skip(number - 1)
            return s.next()
        case .trace(var s):
            s.skip(number - 1)
            return s.next()
        }
    }
}
