import MirrorCore

#if canImport(Glibc)
import Glibc
#endif

/// The stores of a `valgrind --tool=lackey --trace-mem=yes` log, mapped onto frames.
///
/// Only store (` S addr,size`) and modify (` M addr,size`) lines count; loads and instruction
/// fetches are skipped. Each distinct 4 KiB virtual page gets the next frame in first-touch order
/// (wrapping when the trace touches more pages than memory has), so a real program's write
/// pattern drives the emulated machine. The line syntax is `LackeyTraceFormat`'s, shared with
/// the configuration check.
public struct LackeyTrace: Sendable {
    /// One store of the trace.
    public struct Store: Sendable, Hashable {
        /// The frame the store's page maps to.
        public var frame: UInt32
        /// The store's offset in its page, in units of `unitSize` bytes.
        public var unit: UInt16
    }

    /// The stores in trace order.
    public let stores: [Store]
    /// The distinct pages the trace wrote.
    public let distinctPages: Int

    /// The most stores read from one trace (512 MiB of memory).
    public static let maximumStores = 64 << 20

    /// Reads the trace at `path` for a module of `frameCount` frames, with stores of `unitSize` bytes.
    public init(path: String, frameCount: Int, unitSize: Int, pageSize: Int = 4096) throws(HardwareError) {
        let file = try LackeyTraceFormat.open(path)
        defer { fclose(file) }
        var frameOfPage: [UInt64: UInt32] = [:]
        var stores: [Store] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let pageShift = UInt64(pageSize.trailingZeroBitCount)
        while getline(&line, &capacity, file) > 0 {
            guard let text = line, let store = LackeyTraceFormat.parseStore(text) else { continue }
            let page = store.address >> pageShift
            let frame: UInt32
            if let known = frameOfPage[page] {
                frame = known
            } else {
                frame = UInt32(frameOfPage.count % frameCount)
                frameOfPage[page] = frame
            }
            let unit = UInt16(Int(store.address & UInt64(pageSize - 1)) / unitSize)
            stores.append(Store(frame: frame, unit: unit))
            if stores.count >= Self.maximumStores { break }
        }
        guard !stores.isEmpty else { throw LackeyTraceFormat.noStores(path) }
        self.stores = stores
        self.distinctPages = frameOfPage.count
    }
}
