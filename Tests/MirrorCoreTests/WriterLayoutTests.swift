import MirrorCore
import Testing

/// The pure rules the configuration check and the machine share: which writers fit a frame, and
/// which value a CPU takes of a setting it may have its own of.
@Suite("Writer layout and per-CPU settings")
struct WriterLayoutTests {
    /// The DMA engine counts as a writer only while it runs; a frame holds `frame / store` units.
    @Test("writers fit while the frame has a unit of the store size for each")
    func fit() {
        let idle = WriterLayout(cpus: 8, dmaRate: .limited(bytesPerSecond: 0), storeSize: 512, frameSize: 4096)
        #expect(idle.writerCount == 8 && idle.problem == nil, "eight writers, eight units")
        let busy = WriterLayout(cpus: 8, dmaRate: .unlimited, storeSize: 512, frameSize: 4096)
        #expect(busy.writerCount == 9)
        #expect(busy.problem?.hasPrefix("9 writers (workload.cpus plus the DMA engine)") == true)
        #expect(busy.problem?.contains("which has 8; lower workload.store_size or workload.cpus") == true)
        #expect(WriterLayout(cpus: 0, dmaRate: .unlimited, storeSize: 4096, frameSize: 4096).problem == nil)
        #expect(MemoryGeometry.standardFrameSize == 4096)
    }

    /// A CPU's own entry wins; past the list (or with none) the shared value serves.
    @Test("a CPU takes its own entry, or the shared value")
    func perCPU() {
        #expect(PerCPU.value(cpu: 1, own: ["a", "b"], shared: "s") == "b")
        #expect(PerCPU.value(cpu: 2, own: ["a", "b"], shared: "s") == "s")
        #expect(PerCPU.value(cpu: 0, own: [String](), shared: "s") == "s")
        #expect(PerCPU.any(cpus: 2, own: ["a", "t"], shared: "s") { $0 == "t" })
        #expect(!PerCPU.any(cpus: 1, own: ["a", "t"], shared: "s") { $0 == "t" }, "only the first CPUs count")
        #expect(PerCPU.any(cpus: 3, own: [String](), shared: "t") { $0 == "t" })
        #expect(!PerCPU.any(cpus: 0, own: [String](), shared: "t") { $0 == "t" }, "no CPU runs anything")
    }

    /// Store and modify lines parse; loads, instructions and over-long addresses do not.
    @Test("the lackey store line parser")
    func lackeyLines() {
        func parse(_ line: String) -> (UInt64, Int)? {
            line.withCString { LackeyTraceFormat.parseStore($0).map { ($0.address, $0.size) } }
        }
        #expect(parse(" S 04222cac,4\n").map { $0 == (0x0422_2cac, 4) } == true)
        #expect(parse(" M ffffffffffffffff,8").map { $0 == (UInt64.max, 8) } == true)
        #expect(parse(" L 04222cac,4") == nil)
        #expect(parse("I  04222cac,4") == nil)
        #expect(parse(" S 1ffffffffffffffff,8") == nil, "an address beyond 64 bits")
        #expect(parse(" S ,8") == nil)
    }

    /// The check refuses what is not a regular file with a store line, with the trace error code.
    @Test("the trace check refuses a file that is not there, and one that is not a regular file")
    func lackeyCheck() {
        #expect(throws: HardwareError.self) { try LackeyTraceFormat.check(path: "/nonexistent/lackey.log") }
        do {
            try LackeyTraceFormat.check(path: "/dev/zero")
            Issue.record("/dev/zero passed the check")
        } catch {
            #expect(error.code == .trace)
            #expect(error.message.contains("not a regular file"))
        }
    }
}
