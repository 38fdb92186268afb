/// The workload's own record of what it wrote: for each unit of memory (``EmulatedMachine/Options/Workload/storeSize``
/// bytes, owned by one writer), the last value its CPU or the DMA engine stored there. After a
/// failover, ``lostUnits(in:)`` compares a module with it, with code that shares nothing with the
/// store path: every store that completed must be there.
///
/// Kept only when ``EmulatedMachine/Options/recordsStores`` is on (tests), and exact only
/// with the emulated MMU off: the emulated kernel's whole-frame writes (zero-fill, copy-on-write)
/// change frames behind the workload's back.
///
/// `@unchecked Sendable`: each entry is written only by the writer that owns its unit, and read
/// by the checker once the writers are stopped.
public final class StoreRecord: @unchecked Sendable {
    /// The last value stored in each unit; 0 for a unit never stored since the machine started.
    let values: UnsafeMutablePointer<UInt64>
    /// The number of units.
    public let unitCount: Int
    /// The bytes of a unit.
    public let unitSize: Int

    init(byteCount: Int, unitSize: Int) {
        self.unitSize = unitSize
        unitCount = byteCount / unitSize
        values = .allocate(capacity: unitCount)
        values.initialize(repeating: 0, count: unitCount)
    }

    deinit { values.deallocate() }

    /// Units stored since the machine started.
    public var storedUnits: Int { (0..<unitCount).reduce(0) { $0 + (values[$1] != 0 ? 1 : 0) } }

    /// The units of `module` that do not hold the last value stored in them (every 8-byte word of
    /// a unit holds the value). Call it with the writers stopped.
    public func lostUnits(in module: MemoryModule) -> [Int] {
        precondition(module.byteCount == unitCount * unitSize, "the record is of a module of another size")
        let wordsPerUnit = unitSize / 8
        return (0..<unitCount).filter { unit in
            let expected = values[unit]
            return expected != 0
                && (0..<wordsPerUnit).contains { word in
                    module.base.load(fromByteOffset: unit * unitSize + word * 8, as: UInt64.self) != expected
                }
        }
    }
}
