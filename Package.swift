// swift-tools-version:6.0
import PackageDescription

// The module graph: every arrow points down, and backends are siblings.
//
//   mirrord (Entry.swift: @main) → MirrordCLI (the flags)
//     ├─ MirrorBench ─────────┐  the bench: wires its machines through MirrordService, like the daemon
//     └─ MirrordService ──────┤  wiring: picks the backend, runs the duplex under systemd
//          ├─ MirrordConfig   │  the file syntax and the key table → policy + machine options
//          ├─ MirrorSystemd   │  sd_notify, journald
//          ├─ MirrorLinux ────┤  real-MMU dirty tracking (uffd, mprotect)   ┐ siblings behind
//          └─ MirrorEmulation ┘  the emulated active/spare machine          ┘ MirrorCore's protocols
//               └─ MirrorCore    the engine and the hardware-abstraction protocols
//
//   MirrorNBD (→ CNBD, libnbd)   the spare memory on another host as an NBD export: a transport the
//                                service will wire in; it knows nothing of the engine's internals
let package = Package(
    name: "mirrord",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mirrord", targets: ["mirrord"]),
        .executable(name: "mirrorctl", targets: ["mirrorctl"]),
        .library(name: "MirrorCore", targets: ["MirrorCore"]),
        .library(name: "MirrorEmulation", targets: ["MirrorEmulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Thin C helpers the Swift standard library does not reach: futex wait/wake, thread names,
        // a CPU pause, the streaming-store copy, and the plain C harvest the benchmark compares with.
        .target(name: "CMirrorShims"),
        // The domain: geometry, the hardware-abstraction and dirty-tracking protocols, the duplex
        // engine. No configuration syntax, no backend, no systemd.
        .target(name: "MirrorCore", dependencies: ["CMirrorShims"]),
        // The emulated active/spare pair behind the protocol: modules, MMU, CPUs, DMA engine, blackout.
        .target(name: "MirrorEmulation", dependencies: ["MirrorCore", "CMirrorShims"]),
        // userfaultfd and PAGEMAP_SCAN, declared by hand (Debian 12's headers predate them).
        .target(name: "CMirrorLinux"),
        // Dirty tracking by the real MMU: userfaultfd write-protect (async) + PAGEMAP_SCAN, and
        // mprotect + SIGSEGV. A sibling of the emulation: it knows only MirrorCore.
        .target(name: "MirrorLinux", dependencies: ["MirrorCore", "CMirrorLinux", "CMirrorShims"]),
        // mirrord.conf: the TOML subset, one table of keys, the strict loader.
        .target(name: "MirrordConfig", dependencies: ["MirrorCore", "MirrorEmulation"]),
        // libsystemd (sd-daemon.h, sd-journal.h) from Debian's libsystemd-dev.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libnbd (libnbd.h) from Debian's libnbd-dev: the NBD client the remote spare is reached with.
        .systemLibrary(name: "CNBD", pkgConfig: "libnbd", providers: [.apt(["libnbd-dev"])]),
        // The remote spare's transport: an NBD export opened by URI, the pipelined writer, reads.
        // It knows only libnbd, not the engine; the service will wire it to the engine.
        .target(name: "MirrorNBD", dependencies: ["CNBD"]),
        // The 256 MiB pipelined write timed against nbdcopy in the same run (scripts/nbd-measure.sh).
        .executableTarget(name: "mirrord-nbd-measure", dependencies: ["MirrorNBD"]),
        // sd_notify, the journald log handler and the message catalog ids.
        .target(
            name: "MirrorSystemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        // The service: the one place that wires a backend to the engine; reload, progress,
        // status, watchdog, the JSON summary, the main command's logic.
        .target(
            name: "MirrordService",
            dependencies: [
                "CMirrorShims", "MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrordConfig", "MirrorSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // `mirrord bench`: the hot paths against baselines measured in the same run.
        .target(
            name: "MirrorBench",
            dependencies: [
                "MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrordConfig", "MirrordService", "CMirrorShims",
                "CMirrorLinux",
            ]
        ),
        // The command line: the flags of `mirrord` and `mirrord bench` (swift-argument-parser).
        .target(
            name: "MirrordCLI",
            dependencies: [
                "MirrorCore", "MirrordConfig", "MirrordService", "MirrorBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The executable: the entry point and nothing else.
        .executableTarget(name: "mirrord", dependencies: ["MirrordCLI"]),
        // The operator's tool: speaks the control protocol (docs/control.md) to a running daemon.
        .executableTarget(
            name: "mirrorctl",
            dependencies: [
                "MirrorCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The parsers of outside input as libFuzzer targets (`make fuzz`); a plain build replays
        // inputs through them (the seed corpus in Fuzz/corpus, what fuzzing found).
        .executableTarget(
            name: "mirrord-fuzz", dependencies: ["MirrordConfig", "MirrorEmulation"],
            path: "Fuzz/Sources/mirrord-fuzz"),
        // Test doubles shared by the test targets (a DuplexHardware driven by a script), and the
        // trait that runs machines with threads one at a time across the test targets.
        .target(name: "MirrorTestSupport", dependencies: ["MirrorCore"], path: "Tests/Support"),
        .testTarget(name: "MirrorCoreTests", dependencies: ["MirrorCore", "MirrorTestSupport"]),
        .testTarget(name: "MirrordConfigTests", dependencies: ["MirrorCore", "MirrordConfig"]),
        .testTarget(
            name: "MirrorEmulationTests",
            dependencies: ["MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrorTestSupport"]),
        .testTarget(
            name: "MirrordServiceTests",
            dependencies: [
                "MirrordService", "MirrordConfig", "MirrorTestSupport", "MirrorSystemd", "MirrorCore",
                "MirrorEmulation",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MirrorNBDTests", dependencies: ["MirrorNBD", "CNBD"]),
        .testTarget(
            name: "MirrorSystemdTests",
            dependencies: ["MirrorSystemd", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
