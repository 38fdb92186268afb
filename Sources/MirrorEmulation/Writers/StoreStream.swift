/// A source of store addresses for one emulated CPU: the workload pattern, as an endless stream.
///
/// Concrete streams are structs, so the CPU's store loop is specialised for each one and the
/// pattern costs no dynamic dispatch per store.
protocol StoreStream {
    /// The next store: the frame it lands in and its byte offset within that frame.
    mutating func next() -> (frame: Int, offset: Int)

    /// Moves past the next `count` stores at once, as if ``next()`` had been called `count`
    /// times (``ReleasedStoreCheck`` asks where store `n` of a stream lands without replaying it).
    mutating func skip(_ count: UInt64)
}

/// A small, fast, seeded generator (wyrand): one multiply a number.
package struct WyRandom {
    private var state: UInt64

    package init(seed: UInt64) { state = seed ^ 0xA076_1D64_78BD_642F }

    @inline(__always)
    package mutating func next() -> UInt64 {
        state &+= 0xA076_1D64_78BD_642F
        let product = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }

    /// Moves past the next `count` numbers at once (the state is a counter).
    package mutating func advance(by count: UInt64) {
        state &+= count &* 0xA076_1D64_78BD_642F
    }
}

/// Picks `value` of `count` from 32 random bits without a division.
@inline(__always)
package func scaled(_ bits: UInt64, _ count: Int) -> Int {
    Int(truncatingIfNeeded: ((bits & 0xFFFF_FFFF) &* UInt64(count)) >> 32)
}

/// A fraction in [0, 1) from the top 53 of 64 random bits.
@inline(__always)
func unitFraction(_ bits: UInt64) -> Double {
    Double(bits >> 11) * 0x1p-53
}

/// Every frame alike.
struct UniformStream: StoreStream {
    var random: WyRandom
    let frames: Int
    let lane: Int
    let laneUnits: Int
    let layout: LaneLayout

    @inline(__always)
    mutating func next() -> (frame: Int, offset: Int) {
        let r = random.next()
        let frame = scaled(r >> 32, frames)
        let unit = layout.unit(lane: lane, index: scaled(r, laneUnits))
        return (frame, unit &<< layout.storeShift)
    }

    mutating func skip(_ count: UInt64) { random.advance(by: count) }
}

/// A hot set of frames (a contiguous run at a seeded place, like a heap) takes `hotShare` of the
/// stores; the rest go anywhere.
struct HotSetStream: StoreStream {
    var random: WyRandom
    let frames: Int
    let hotStart: Int
    let hotCount: Int
    /// `hotShare` scaled to 32 bits.
    let hotThreshold: UInt64
    let lane: Int
    let laneUnits: Int
    let layout: LaneLayout

    @inline(__always)
    mutating func next() -> (frame: Int, offset: Int) {
        let r = random.next()
        let r2 = random.next()
        let frame = (r2 & 0xFFFF_FFFF) < hotThreshold ? hotStart &+ scaled(r >> 32, hotCount) : scaled(r >> 32, frames)
        let unit = layout.unit(lane: lane, index: scaled(r, laneUnits))
        return (frame, unit &<< layout.storeShift)
    }

    mutating func skip(_ count: UInt64) { random.advance(by: count &* 2) }
}

/// Frame after frame, every unit of the lane in turn, wrapping at the end of memory.
struct SequentialStream: StoreStream {
    var frame: Int
    var index = 0
    let frames: Int
    let lane: Int
    let laneUnits: Int
    let layout: LaneLayout

    @inline(__always)
    mutating func next() -> (frame: Int, offset: Int) {
        let store = (frame, layout.unit(lane: lane, index: index) &<< layout.storeShift)
        index &+= 1
        if index == laneUnits {
            index = 0
            frame &+= 1
            if frame == frames { frame = 0 }
        }
        return store
    }

    mutating func skip(_ count: UInt64) {
        let period = UInt64(frames * laneUnits)
        guard period > 0 else { return }
        let position = (UInt64(frame * laneUnits + index) + count % period) % period
        frame = Int(position / UInt64(laneUnits))
        index = Int(position % UInt64(laneUnits))
    }
}

/// Replays a lackey trace, looping; each CPU starts at its own place in it. Its frames are
/// folded into `frames` (the pages of a process, with the MMU).
struct TraceStream: StoreStream {
    let trace: LackeyTrace
    var position: Int
    let lane: Int
    let layout: LaneLayout
    let frames: Int

    @inline(__always)
    mutating func next() -> (frame: Int, offset: Int) {
        let entry = trace.stores[position]
        position &+= 1
        if position == trace.stores.count { position = 0 }
        let unit = layout.nearestUnit(lane: lane, to: Int(entry.unit))
        return (Int(entry.frame) % frames, unit &<< layout.storeShift)
    }

    mutating func skip(_ count: UInt64) {
        let period = UInt64(trace.stores.count)
        position = Int((UInt64(position) + count % period) % period)
    }
}
