import Foundation
import MirrorCore
import Testing

@testable import MirrorEmulation

@Suite("Lackey trace replay")
struct LackeyTraceTests {
    /// Writes a lackey-style log with `stores` store/modify lines over `pages` distinct pages,
    /// interleaved with loads and instruction fetches that must be skipped.
    static func writeTrace(pages: Int, stores: Int, seed: UInt64) throws -> String {
        var random = WyRandom(seed: seed)
        var text = "==123== Lackey, an example Valgrind tool\n"
        for i in 0..<stores {
            let page = i < pages ? i : scaled(random.next(), pages)
            let address = 0x7ff0_0000_0000 + UInt64(page) * 4096 + UInt64(scaled(random.next(), 4088))
            text += "I  0400d7d4,3\n"
            text += " L \(String(address &+ 8, radix: 16)),8\n"
            text += (i % 3 == 0 ? " M " : " S ") + String(address, radix: 16) + ",8\n"
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lackey-\(getpid())-\(seed).log").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Writes `text` to a temporary log named after `name`; returns its path (the caller unlinks it).
    static func writeLog(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lackey-\(name)-\(getpid()).log").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("addresses up to 2⁶⁴ − 1 are folded into the module; longer ones and endless sizes are skipped, no trap")
    func largeAddresses() throws {
        let path = try Self.writeLog(
            "large",
            """
             S 8000000000000000,4
             M ffffffffffffffc0,8
             S 1ffffffffffffffff,8
             S 0421c000,99999999999999999999999999999
            """)
        defer { unlink(path) }
        let trace = try LackeyTrace(path: path, frameCount: 16, unitSize: 64)
        #expect(trace.stores.map(\.frame) == [0, 1, 2])
        #expect(trace.stores.map(\.unit) == [0, 63, 0])
    }

    @Test("store and modify lines map pages to frames in first-touch order; loads and instructions are skipped")
    func firstTouchOrder() throws {
        let path = try Self.writeLog(
            "order",
            """
            I  04222cac,3
             S 7ff000398,8
             L 04222cb0,4
             M 0421c7f0,4
             S 7ff000f00,8
            I  04222cae,2
             S 0421c000,4
            garbage line
             S 10000040,8
            """)
        defer { unlink(path) }
        let trace = try LackeyTrace(path: path, frameCount: 100, unitSize: 64)
        #expect(trace.stores.map(\.frame) == [0, 1, 0, 1, 2])
        let units: [UInt16] = [0x398 / 64, 0x7f0 / 64, 0xf00 / 64, 0, 1]
        #expect(trace.stores.map(\.unit) == units)
        #expect(trace.distinctPages == 3)
    }

    @Test("more pages than frames wrap around memory")
    func wraps() throws {
        let path = try Self.writeTrace(pages: 50, stores: 50, seed: 1)
        defer { unlink(path) }
        let trace = try LackeyTrace(path: path, frameCount: 16, unitSize: 64)
        #expect(trace.stores.allSatisfy { $0.frame < 16 })
        #expect(trace.distinctPages == 50)
    }

    @Test("a file without store lines is rejected with a hint")
    func noStores() throws {
        let path = try Self.writeLog("empty", "I  04222cac,3\n L 04222cb0,4\n")
        defer { unlink(path) }
        #expect(throws: HardwareError.self) { try LackeyTrace(path: path, frameCount: 16, unitSize: 64) }
    }
}
