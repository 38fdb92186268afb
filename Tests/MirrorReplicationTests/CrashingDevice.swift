import MirrorReplication
import Synchronization

/// An export in memory that can die like a host: after a given number of writes it fails every
/// call, and ``crash(_:)`` then keeps what a real disk might after a power cut: every write made
/// stable (by a flush, or durable itself) whole, and of the others (and the one in flight) any
/// subset, each whole, lost, or torn at a 512-byte sector, in any order.
final class CrashingDevice: ExportDevice {
    private struct State {
        var stable: [UInt8]
        var pending: [(offset: Int, bytes: [UInt8])] = []
        var writesLeft: Int?
        var writes = 0
        var dead = false
    }

    let size: UInt64
    private let state: Mutex<State>

    /// A zeroed export of `size` bytes; it dies at its `dieAtWrite`-th extent written (1: the
    /// first), or never.
    init(size: Int, dieAtWrite: Int? = nil) {
        self.size = UInt64(size)
        state = Mutex(State(stable: [UInt8](repeating: 0, count: size), writesLeft: dieAtWrite.map { $0 - 1 }))
    }

    /// Extents written so far.
    var writes: Int { state.withLock { $0.writes } }

    /// What a reader sees now (stable bytes with the pending writes over them).
    var bytes: [UInt8] { state.withLock { Self.view($0) } }

    private static func view(_ s: State) -> [UInt8] {
        var view = s.stable
        for write in s.pending {
            view.replaceSubrange(write.offset..<write.offset + write.bytes.count, with: write.bytes)
        }
        return view
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ExportError) {
        let range = Int(offset)..<Int(offset) + buffer.count
        let view = try alive { s -> [UInt8] in
            var view = Array(s.stable[range])
            for write in s.pending {
                let written = write.offset..<write.offset + write.bytes.count
                let overlap = written.clamped(to: range)
                guard !overlap.isEmpty else { continue }
                view.replaceSubrange(
                    overlap.lowerBound - range.lowerBound..<overlap.upperBound - range.lowerBound,
                    with: write.bytes[overlap.lowerBound - write.offset..<overlap.upperBound - write.offset])
            }
            return view
        }
        buffer.copyBytes(from: view)
    }

    func write(_ extents: UnsafeBufferPointer<ExportExtent>, durable: Bool) throws(ExportError) {
        try alive { _ in }
        for extent in extents {
            let bytes = [UInt8](UnsafeRawBufferPointer(start: extent.source, count: extent.length))
            let died = state.withLock { s -> Bool in
                s.writes += 1
                if let left = s.writesLeft, left == 0 {
                    // In flight when the host died: the crash decides what of it lands.
                    s.pending.append((Int(extent.offset), bytes))
                    s.dead = true
                    return true
                }
                s.writesLeft = s.writesLeft.map { $0 - 1 }
                if durable {
                    s.stable.replaceSubrange(Int(extent.offset)..<Int(extent.offset) + bytes.count, with: bytes)
                } else {
                    s.pending.append((Int(extent.offset), bytes))
                }
                return false
            }
            if died { throw ExportError(.io, "write", "the host died") }
        }
    }

    func flush() throws(ExportError) {
        try alive { s in
            for write in s.pending {
                s.stable.replaceSubrange(write.offset..<write.offset + write.bytes.count, with: write.bytes)
            }
            s.pending = []
        }
    }

    /// The power cut: the stable bytes, plus a random part of what was not yet stable. The device
    /// then works again (the host rebooted), never dying.
    func crash<R: RandomNumberGenerator>(_ random: inout R) {
        state.withLock { s in
            for write in s.pending.shuffled(using: &random) {
                let sectors = (write.bytes.count + 511) / 512
                let kept: Int
                switch Int.random(in: 0..<3, using: &random) {
                case 0: kept = 0
                case 1: kept = write.bytes.count
                default: kept = min(write.bytes.count, Int.random(in: 0...sectors, using: &random) * 512)
                }
                s.stable.replaceSubrange(write.offset..<write.offset + kept, with: write.bytes[0..<kept])
            }
            s.pending = []
            s.dead = false
            s.writesLeft = nil
        }
    }

    private func alive<T>(_ body: (inout State) -> T) throws(ExportError) -> T {
        let result: T? = state.withLock { s in s.dead ? nil : body(&s) }
        guard let result else { throw ExportError(.io, "export", "the host died") }
        return result
    }
}
