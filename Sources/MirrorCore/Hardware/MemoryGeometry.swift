/// The shape of a memory module: how many frames it has and how large each frame is.
///
/// Every address the engine handles is a *frame number* (a physical page of the module); the
/// geometry turns frame numbers into byte offsets and back.
public struct MemoryGeometry: Sendable, Hashable {
    /// The size of one frame in bytes (a power of two; 4096 on x86-64).
    public let frameSize: Int
    /// The number of frames in each module.
    public let frameCount: Int

    /// The frame size of every machine mirrord builds: 4 KiB, as on x86-64. Said here once, so
    /// that the configuration's checks and the machines it shapes agree on it.
    package static let standardFrameSize = 4096

    /// Creates a geometry; `frameSize` must be a power of two and `frameCount` positive.
    public init(frameSize: Int, frameCount: Int) {
        precondition(frameSize > 0 && frameSize & (frameSize - 1) == 0, "frame size must be a power of two")
        precondition(frameCount > 0, "a module has at least one frame")
        self.frameSize = frameSize
        self.frameCount = frameCount
    }

    /// The size of each module in bytes.
    public var byteCount: Int { frameSize * frameCount }

    /// Every frame of the module, as a range of frame numbers.
    public var allFrames: Range<Int> { 0..<frameCount }
}
