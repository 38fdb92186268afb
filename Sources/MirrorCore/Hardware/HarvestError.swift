/// Why a harvest request was refused. A refused harvest changes no dirty state.
public enum HarvestError: Error, Hashable, CustomStringConvertible {
    /// The flags carry bits this interface does not define.
    case unknownFlags(UInt32)
    /// Neither `get` nor `clear` was asked for.
    case noOperation
    /// The frame range reaches outside the module.
    case rangeOutOfBounds(Range<Int>, frameCount: Int)
    /// `get` was asked for with an output vector of capacity zero.
    case emptyOutput
    /// Tracking is not active, so there is no dirty state to harvest.
    case trackingInactive
    /// The tracking hardware failed (for example the `PAGEMAP_SCAN` ioctl); nothing can be
    /// trusted about the dirty state any more.
    case hardwareFailure(HardwareError)

    /// The value or error as one line of text.
    public var description: String {
        switch self {
        case .unknownFlags(let bits):
            return "harvest: unknown flag bits 0x\(String(bits, radix: 16)) (known: get=0x1, clear=0x2)"
        case .noOperation:
            return "harvest: flags ask for neither get nor clear"
        case .rangeOutOfBounds(let range, let frameCount):
            return "harvest: frames \(range.lowerBound)..<\(range.upperBound) outside the module's \(frameCount) frames"
        case .emptyOutput:
            return "harvest: get needs an output vector with a capacity of at least one frame"
        case .trackingInactive:
            return "harvest: dirty tracking is not active"
        case .hardwareFailure(let what):
            return "harvest: the tracking hardware failed: \(what)"
        }
    }
}
