import Logging
import MirrorCore
import MirrorSystemd
import MirrorTestSupport
import MirrordConfig
import Synchronization
import Testing

@testable import MirrordService

extension ScriptedHardware: ServiceMachine {}

/// A small emulated machine kept busy: `megabytes` MiB of memory, no emulated MMU and no
/// page-table churn, its CPUs and its DMA each writing `megabytes` MiB a second (DMA in 16 KiB
/// blocks). The service suites that run a real machine start from it.
func busyMachineConfiguration(megabytes: Int) -> MirrordConfiguration {
    var config = MirrordConfiguration()
    config.machine.memorySize = megabytes << 20
    config.machine.mmu.enabled = false
    config.machine.workload.churn = 0
    config.machine.workload.rate = .limited(bytesPerSecond: megabytes << 20)
    config.machine.dma.rate = .limited(bytesPerSecond: megabytes << 20)
    config.machine.dma.blockSize = 16 << 10
    return config
}

/// What a service told systemd, one notification a message (`KEY=value` lines).
final class NotificationLog: Sendable {
    private let messages = Mutex<[String]>([])

    /// A notifier whose notifications land here.
    func notifier(watchdog: Duration? = nil) -> SystemdNotifier {
        SystemdNotifier(watchdogInterval: watchdog) { message in self.messages.withLock { $0.append(message) } }
    }

    var all: [String] { messages.withLock { $0 } }

    /// The values of `KEY=` across every notification, in order.
    func values(_ key: String) -> [String] {
        all.flatMap { $0.split(separator: "\n") }.compactMap { line in
            line.hasPrefix(key + "=") ? String(line.dropFirst(key.count + 1)) : nil
        }
    }
}

/// Log entries a service wrote: level, message and metadata.
final class LogRecord: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }

    /// A logger whose entries land here.
    var logger: Logger {
        Logger(label: "test") { _ in Handler(record: self) }
    }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    private struct Handler: LogHandler {
        let record: LogRecord
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            if let own = event.metadata { merged.merge(own) { _, new in new } }
            record.append(
                Entry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// Waits until `condition` holds, yielding meanwhile; records a failure naming `what` after
/// `seconds` (a hang detector, generous enough for a machine whose cores are busy).
func until(
    _ what: String, seconds: Int = 120, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("timed out after \(seconds) s waiting until \(what)", sourceLocation: sourceLocation)
            return
        }
        await Task.yield()
    }
}
