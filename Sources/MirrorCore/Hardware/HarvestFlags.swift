/// What a harvest does to the dirty state of a frame range, in the manner of the pagemap
/// get-and-clear ioctl: report, clear, or both atomically.
///
/// Flags are a raw bit set so that the interface can grow; a backend rejects any bit it does not
/// know with ``HarvestError/unknownFlags(_:)`` instead of ignoring it.
public struct HarvestFlags: OptionSet, Sendable, Hashable {
    /// The flag bits, known or not.
    public let rawValue: UInt32

    /// Creates a flag set from raw bits (unknown bits are kept, so that they can be rejected).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Report dirty frames into the output vector.
    public static let get = HarvestFlags(rawValue: 1 << 0)
    /// Clear the dirty state of frames. With ``get``, only the reported frames are cleared.
    public static let clear = HarvestFlags(rawValue: 1 << 1)
    /// Report and clear in one atomic step: the usual harvest of a duplex pass.
    public static let getAndClear: HarvestFlags = [.get, .clear]

    /// Every flag this version of the interface defines.
    public static let known: HarvestFlags = [.get, .clear]

    /// The bits of this set that no version of the interface defines yet.
    public var unknownBits: UInt32 { rawValue & ~Self.known.rawValue }

    /// Throws unless the set holds at least one known flag and no unknown bits.
    public func validate() throws(HarvestError) {
        if unknownBits != 0 { throw .unknownFlags(unknownBits) }
        if isEmpty { throw .noOperation }
    }
}
