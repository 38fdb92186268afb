/// Hands out the frames of the active module to emulated processes: single frames, or aligned
/// runs of 512 for huge pages, with a reference count per frame for copy-on-write sharing.
///
/// A freed frame keeps its contents for a while before it is handed out again, as pages of the
/// page cache outlive the mappings that wrote them: the last `retainedCapacity` freed frames wait
/// in a first-in first-out queue, and only older ones are reused. So a write that tracking lost
/// when its mapping went away stays in memory (and in the verify's sight) instead of being
/// painted over by the next zero-fill.
///
/// `@unchecked Sendable`: used only under ``EmulatedMMU``'s lock.
final class FrameAllocator: @unchecked Sendable {
    static let blockFrames = PageTableArena.entriesPerTable

    let frameCount: Int
    private var references: [UInt16]
    private var freeBlocks: RingBuffer
    private var freeFrames: RingBuffer
    private var retained: RingBuffer
    /// How many freed frames keep their contents before reuse (a sixteenth of memory).
    let retainedCapacity: Int

    init(frameCount: Int) {
        self.frameCount = frameCount
        references = Array(repeating: 0, count: frameCount)
        freeBlocks = RingBuffer(capacity: frameCount / Self.blockFrames + 1)
        freeFrames = RingBuffer(capacity: frameCount + Self.blockFrames)
        retainedCapacity = frameCount / 16
        retained = RingBuffer(capacity: retainedCapacity + 1)
        for block in 0..<(frameCount / Self.blockFrames) { freeBlocks.push(block) }
        for frame in (frameCount / Self.blockFrames * Self.blockFrames)..<frameCount { freeFrames.push(frame) }
    }

    /// One frame with a reference count of one, or nil when memory is full.
    func allocate() -> Int? {
        if freeFrames.isEmpty, let block = freeBlocks.pop() {
            for frame in (block * Self.blockFrames)..<((block + 1) * Self.blockFrames) { freeFrames.push(frame) }
        }
        guard let frame = freeFrames.pop() ?? retained.pop() else { return nil }
        references[frame] = 1
        return frame
    }

    /// The first of 512 aligned free frames, each with a count of one, or nil when none is whole.
    func allocateHuge() -> Int? {
        guard let block = freeBlocks.pop() else { return nil }
        let first = block * Self.blockFrames
        for frame in first..<(first + Self.blockFrames) { references[frame] = 1 }
        return first
    }

    /// Adds a mapping of `frame`.
    func retain(_ frame: Int) { references[frame] &+= 1 }

    /// The mappings of `frame`.
    func referenceCount(_ frame: Int) -> Int { Int(references[frame]) }

    /// Drops a mapping of `frame`; at zero the frame is free again.
    func release(_ frame: Int) {
        references[frame] &-= 1
        guard references[frame] == 0 else { return }
        retained.push(frame)
        if retained.count > retainedCapacity, let oldest = retained.pop() { freeFrames.push(oldest) }
    }
}

/// A fixed-capacity FIFO of integers.
struct RingBuffer {
    private var storage: [Int32]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { storage = Array(repeating: 0, count: max(1, capacity)) }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ value: Int) {
        precondition(count < storage.count, "ring buffer full")
        storage[(head + count) % storage.count] = Int32(value)
        count += 1
    }

    mutating func pop() -> Int? {
        guard count > 0 else { return nil }
        let value = Int(storage[head])
        head = (head + 1) % storage.count
        count -= 1
        return value
    }
}
