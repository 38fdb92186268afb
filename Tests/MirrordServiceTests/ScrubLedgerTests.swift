import Testing

@testable import MirrordService

@Suite("Scrub ledger: a healthy lockstep is journalled now and then, never per slice")
struct ScrubLedgerTests {
    @Test("the first whole sweep is reported, then at most once per interval at the end of a sweep")
    func pacing() {
        var ledger = ScrubLedger()
        let minute: UInt64 = 60_000_000_000
        #expect(ledger.record(frames: 100, sweepEnded: false, now: 0) == nil)
        #expect(ledger.record(frames: 50, sweepEnded: true, now: minute) == .init(frames: 150, sweeps: 1, first: true))
        var lines: [ScrubLedger.Line] = []
        // Two hours of sweeps, one a minute, each of two slices.
        for m in 2...121 {
            if let line = ledger.record(frames: 100, sweepEnded: false, now: UInt64(m) * minute) { lines.append(line) }
            if let line = ledger.record(frames: 50, sweepEnded: true, now: UInt64(m) * minute + 1) {
                lines.append(line)
            }
        }
        #expect(lines.count == 8, "every 15 minutes over two hours")
        #expect(lines.allSatisfy { !$0.first && $0.sweeps == 15 && $0.frames == 15 * 150 })
    }
}
