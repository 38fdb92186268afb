import MirrorCore
import MirrorTestSupport
import Testing

@testable import MirrordService

@Suite("Progress reporter: the journal lines of a healthy lockstep, and of a stop or a failover slower than the target")
struct ProgressReporterTests {
    func reporter(_ log: LogRecord) -> ProgressReporter {
        ProgressReporter(
            logger: log.logger, geometry: MemoryGeometry(frameSize: 4096, frameCount: 1_000),
            notifier: NotificationLog().notifier(), hangAfterPass: 0, stopToken: DuplexStopToken())
    }

    @Test(
        "a healthy scrub writes 'lockstep holds' at the end of its first sweep, with SCRUBBED_FRAMES, and not per slice"
    )
    func lockstepHolds() throws {
        let log = LogRecord()
        let reporter = reporter(log)
        let clean = DuplexSummary.Verify(framesChecked: 500, mismatches: 0, firstMismatches: [])
        #expect(!reporter.scrubbed(clean, frames: 0..<500, sweepEnded: false, now: 1))
        #expect(log.all.isEmpty, "no line for a slice")
        #expect(!reporter.scrubbed(clean, frames: 500..<1_000, sweepEnded: true, now: 2))
        #expect(log.all.count == 1)
        let line = try #require(log.all.last)
        #expect(
            line.message == "lockstep holds: scrubbed 1000 frames (1 whole sweeps of memory) since the duplex, 0 differ"
        )
        #expect(line.metadata["scrubbed_frames"] == "1000" && line.metadata["verify_mismatches"] == "0")
        #expect(!reporter.scrubbed(clean, frames: 0..<1_000, sweepEnded: true, now: 3))
        #expect(log.all.count == 1, "the next line waits for the interval")
    }

    @Test(
        "the summary warns, with STOP_USEC, when the stop of the blackout taken exceeded the target, and not otherwise")
    func slowStopWarning() {
        for (stop, fastFrom) in [(UInt64(2_000_000), Int?.none), (2_000_000, 3)] {
            let hardware = ScriptedHardware(
                dirtyPerPass: [50_000, 20_000, 8_000, 900], stopNanoseconds: stop, fastStopsFrom: fastFrom)
            let summary = DuplexEngine(
                hardware: hardware, policy: DuplexPolicy(thresholdFrames: 1_000), clock: hardware.clock
            ).run()
            let log = LogRecord()
            reporter(log).observe(.finished(summary))
            let warnings = log.all.filter {
                $0.level == .warning && $0.message.hasPrefix("stopping the CPUs alone took longer")
            }
            if fastFrom == nil {
                #expect(warnings.count == 1)
                #expect(warnings.first?.metadata["stop_usec"] == "2000")
            } else {
                #expect(warnings.isEmpty, "only the probes stopped slowly")
            }
        }
    }

    @Test("a blackout over the target because the host took the engine's thread says so, with OFF_CPU_USEC")
    func offCPUWarning() {
        for descheduled in [UInt64(0), 2_000_000] {
            let hardware = ScriptedHardware(
                dirtyPerPass: [50_000, 20_000, 8_000, 40], descheduledInBlackoutCopy: descheduled)
            let summary = DuplexEngine(
                hardware: hardware, policy: DuplexPolicy(thresholdFrames: 64), clock: hardware.clock
            ).run()
            let log = LogRecord()
            reporter(log).observe(.finished(summary))
            let warnings = log.all.filter { $0.level == .warning && $0.message.contains("off their CPUs") }
            if descheduled == 0 {
                #expect(warnings.isEmpty)
            } else {
                #expect(warnings.count == 1)
                #expect(
                    warnings.first?.message
                        == "the blackout (2051 µs) exceeded the target of 1000 µs because mirrord's threads were off their CPUs for 1999 µs of it: the host (steal time) or another thread had the cores"
                )
                #expect(warnings.first?.metadata["off_cpu_usec"] == "1999", "2 ms off the CPU, less the 1 µs stop")
            }
        }
    }

    @Test("a failover over the target says so in a warning with BLACKOUT_USEC; one within it does not")
    func slowFailoverWarning() {
        let fault = ModuleFault(.uncorrectable, module: .active, frame: 81_234)
        for (blackout, warned) in [(UInt64(1_500), true), (1_000, false), (800, false)] {
            let log = LogRecord()
            reporter(log).failedOver(fault, blackoutMicroseconds: blackout, targetMicroseconds: 1_000)
            let critical = log.all.filter { $0.level == .critical }
            #expect(critical.count == 1 && critical.first?.metadata["failover_blackout_usec"] == "\(blackout)")
            let warnings = log.all.filter {
                $0.level == .warning
                    && $0.message.hasPrefix(
                        "the failover's blackout (\(blackout) µs) exceeded duplex.blackout_target (1000 µs)")
            }
            #expect(warnings.count == (warned ? 1 : 0), "blackout \(blackout) µs")
            #expect(warnings.allSatisfy { $0.metadata["blackout_usec"] == "\(blackout)" })
        }
    }
}
