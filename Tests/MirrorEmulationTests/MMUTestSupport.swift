import MirrorCore
import Synchronization

@testable import MirrorEmulation

/// A machine with the MMU and no running CPUs or DMA, so a test can drive the page tables itself.
/// `configure` adjusts the MMU's options (huge pages off by default).
func quietMMUMachine(megabytes: Int = 16, configure: (inout EmulatedMachine.Options.MMU) -> Void = { _ in }) throws
    -> (EmulatedMachine, EmulatedMMU)
{
    var options = quietOptions(megabytes: megabytes)
    configure(&options.mmu)
    let machine = try EmulatedMachine(options: options)
    return (machine, machine.parts.mmu!)
}

extension EmulatedMMU {
    /// A CPU store of `value` into the first word of `page` of `space`, faulting as needed.
    /// Returns the frame written, or nil when memory ran out.
    @discardableResult
    func store(_ space: AddressSpace, page: Int, value: UInt64, active: MemoryModule) -> Int? {
        var frame = translateForWrite(space, page: page, writer: 0)
        // random 0: a region is given a huge page whenever options.hugeShare > 0.
        if frame == nil, resolveWriteFault(space, page: page, random: 0) {
            frame = translateForWrite(space, page: page, writer: 0)
        }
        guard let frame else { return nil }
        active.base.storeBytes(of: value, toByteOffset: frame * 4096, as: UInt64.self)
        return frame
    }

    /// The first word of `frame` in `module`.
    func word(_ frame: Int, in module: MemoryModule) -> UInt64 {
        module.base.load(fromByteOffset: frame * 4096, as: UInt64.self)
    }
}

/// An MMU-notifier subscriber that records what it is told, in order.
final class RecordingNotifier: MMUNotifier, @unchecked Sendable {
    let name: String
    let log: EventLog
    init(_ name: String, log: EventLog) {
        self.name = name
        self.log = log
    }
    func invalidatePage(_ space: AddressSpace, page: Int, departing: PageTableEntry) {
        log.append("\(name): page \(page)")
    }
    func invalidateRange(_ space: AddressSpace, pages: Range<Int>, departing: [(page: Int, entry: PageTableEntry)]) {
        log.append("\(name): range \(pages.lowerBound)..<\(pages.upperBound) (\(departing.count) entries)")
    }
    func release(_ space: AddressSpace) { log.append("\(name): release \(space.id)") }
}

/// A thread-safe list of event descriptions.
final class EventLog: Sendable {
    private let entries = Mutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// A second subscriber of the kind MMU notifiers were written for: an IOMMU's shadow page table, which
/// caches translations and must drop them when the primary mapping goes away.
final class ShadowPageTable: MMUNotifier, @unchecked Sendable {
    private(set) var translations: [Int: Int] = [:]
    func fill(page: Int, frame: Int) { translations[page] = frame }
    func invalidatePage(_ space: AddressSpace, page: Int, departing: PageTableEntry) { translations[page] = nil }
    func invalidateRange(_ space: AddressSpace, pages: Range<Int>, departing: [(page: Int, entry: PageTableEntry)]) {
        for page in pages { translations[page] = nil }
    }
    func release(_ space: AddressSpace) { translations = [:] }
}
