// swift-tools-version:6.0
import PackageDescription

// The module graph: every arrow points down, and backends are siblings. An executable holds its
// entry point and nothing else.
//
//   mirrord (Entry.swift: @main) ──────→ MirrordCLI    the daemon's flags
//   mirrord-bench (Entry.swift: @main) → MirrorBench   the bench: its flags, sections and plots
//     both ↓ (the bench builds its machines through MirrordService, like the daemon)
//     MirrordService ──────────┐  wiring: picks the backend, runs the duplex under systemd
//       ├─ MirrordControl      │  the control protocol's typed requests and replies, the version
//       ├─ MirrordConfig ──────┤  the file syntax and the key table → policy + its own machine options
//       ├─ MirrorSystemd       │  sd_notify, journald
//       ├─ MirrorLinux ────────┤  real-MMU dirty tracking (uffd, mprotect)   ┐ siblings behind
//       ├─ MirrorEmulation ────┤  the emulated active/spare machine          ┘ MirrorCore's protocols
//       └─ MirrorReplication ──┤  the spare on another host: the export's layout, epochs, takeover
//            └─ MirrorNBD → CNBD  its transport: an NBD export over libnbd (`mirrord takeover --export`)
//            MirrorCore ◄──────┘  the engine, the hardware protocols, and the pure rules the
//                                 configuration and the backends share (writer layout, trace format)
//
//   mirrorctl → MirrordControl   the operator's tool knows the protocol and nothing of the engine
//   mirrord-check → MirrordService  a test tool (not installed): does an image hold what was released?
//
// MirrorCore, MirrorEmulation and MirrorLinux are library products with a public, documented API
// (`make docs`); Tests/EmbeddingPackage is an outside package that builds against the three.
let package = Package(
    name: "mirrord",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mirrord", targets: ["mirrord"]),
        .executable(name: "mirrorctl", targets: ["mirrorctl"]),
        .library(name: "MirrorCore", targets: ["MirrorCore"]),
        .library(name: "MirrorEmulation", targets: ["MirrorEmulation"]),
        .library(name: "MirrorLinux", targets: ["MirrorLinux"]),
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
        // The spare on another host, on the export's side: its layout, the epoch journal the
        // primary commits through, and the takeover's replay of the last committed epoch, over
        // block storage (ExportDevice): an NBD export through MirrorNBD, or the file behind one.
        .target(name: "MirrorReplication", dependencies: ["MirrorCore", "MirrorNBD", "CMirrorShims"]),
        // mirrord.conf: the TOML subset, one table of keys, the strict loader. It knows only
        // MirrorCore: it yields its own MachineOptions, which MirrordService maps onto a backend's.
        .target(name: "MirrordConfig", dependencies: ["MirrorCore"]),
        // libsystemd (sd-daemon.h, sd-journal.h) from Debian's libsystemd-dev.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libnbd (libnbd.h) from Debian's libnbd-dev: the NBD client the remote spare is reached with.
        .systemLibrary(name: "CNBD", pkgConfig: "libnbd", providers: [.apt(["libnbd-dev"])]),
        // The remote spare's transport: an NBD export opened by URI, the pipelined writer, reads.
        // It knows only libnbd, not the engine; the service will wire it to the engine.
        .target(name: "MirrorNBD", dependencies: ["CNBD"]),
        // sd_notify, the journald log handler and the message catalog ids.
        .target(
            name: "MirrorSystemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        // The control protocol (docs/control.md): Codable requests, strictly decoded, and replies,
        // shared by the daemon and mirrorctl; the version both print. Foundation only.
        .target(name: "MirrordControl"),
        // The service: the one place that wires a backend to the engine; reload, progress,
        // status, watchdog, the JSON summary, the main command's logic.
        .target(
            name: "MirrordService",
            dependencies: [
                "CMirrorShims", "MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrorReplication", "MirrordConfig",
                "MirrordControl", "MirrorSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The bench: the hot paths against baselines measured in the same run, its flags
        // (`mirrord-bench`) and its SVG plots. Not part of the daemon.
        .target(
            name: "MirrorBench",
            dependencies: [
                "MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrorNBD", "MirrorReplication", "MirrordConfig",
                "MirrordControl", "MirrordService",
                "CMirrorShims",
                "CMirrorLinux", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The command line: the flags of `mirrord` (swift-argument-parser).
        .target(
            name: "MirrordCLI",
            dependencies: [
                "MirrorCore", "MirrordConfig", "MirrordControl", "MirrordService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The executable: the entry point and nothing else.
        // The executable's constructor: the start-up signal handlers, before the Swift runtime starts.
        .target(name: "CMirrordEntry", dependencies: ["CMirrorShims"]),
        .executableTarget(name: "mirrord", dependencies: ["MirrordCLI", "CMirrordEntry"]),
        // The bench's executable (`make bench`; not installed): the entry point and nothing else.
        .executableTarget(name: "mirrord-bench", dependencies: ["MirrorBench"]),
        // A test tool (not installed): judges a run from its output alone, e.g. `mirrord-check
        // released`, whether a spare's image lost a store the workload released (issue 25). It builds
        // the machine's options with the service's own mapping (MachineFactory).
        .executableTarget(
            name: "mirrord-check",
            dependencies: [
                "MirrorEmulation", "MirrordConfig", "MirrordService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The operator's tool: speaks the control protocol (docs/control.md) to a running daemon.
        .executableTarget(
            name: "mirrorctl",
            dependencies: [
                "MirrordControl", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The parsers of outside input as libFuzzer targets (`make fuzz`); a plain build replays
        // inputs through them (the seed corpus in Fuzz/corpus, what fuzzing found).
        .executableTarget(
            name: "mirrord-fuzz", dependencies: ["MirrordConfig", "MirrorEmulation"],
            path: "Fuzz/Sources/mirrord-fuzz"),
        // Test doubles shared by the test targets (a DuplexHardware driven by a script), and the
        // trait that runs machines with threads one at a time across the test targets.
        .target(name: "MirrorTestSupport", dependencies: ["MirrorCore"], path: "Tests/Support"),
        // A test target for each module (swift-nio's rule), named after it.
        .testTarget(
            name: "MirrorReplicationTests",
            dependencies: ["MirrorReplication", "MirrorNBD", "MirrorCore", "MirrorEmulation", "MirrorTestSupport"]),
        .testTarget(name: "MirrorCoreTests", dependencies: ["MirrorCore", "MirrorTestSupport"]),
        .testTarget(name: "MirrordConfigTests", dependencies: ["MirrorCore", "MirrordConfig"]),
        .testTarget(name: "MirrordControlTests", dependencies: ["MirrordControl"]),
        .testTarget(name: "MirrorctlTests", dependencies: ["mirrorctl", "MirrordControl"]),
        .testTarget(
            name: "MirrordCheckTests",
            dependencies: [
                "mirrord-check", "MirrorCore", "MirrorEmulation", "MirrordConfig", "MirrordService",
                "MirrorTestSupport",
            ]),
        .testTarget(
            name: "MirrorEmulationTests",
            dependencies: ["MirrorCore", "MirrorEmulation", "MirrorTestSupport"]),
        // The real-MMU backends driving an emulated machine: harvest semantics, exact duplexes,
        // the throttle, and the errors that say what to do.
        .testTarget(
            name: "MirrorLinuxTests",
            dependencies: ["MirrorCore", "MirrorEmulation", "MirrorLinux", "MirrorTestSupport"]),
        .testTarget(
            name: "MirrordServiceTests",
            dependencies: [
                "MirrordService", "MirrordConfig", "MirrordControl", "MirrorTestSupport", "MirrorSystemd", "MirrorCore",
                "MirrorEmulation", "MirrorReplication",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MirrorNBDTests", dependencies: ["MirrorNBD", "CNBD"]),
        .testTarget(
            name: "MirrorBenchTests",
            dependencies: [
                "MirrorBench", "MirrorCore", "MirrordConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "MirrordCLITests",
            dependencies: ["MirrordCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "MirrorSystemdTests",
            dependencies: ["MirrorSystemd", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
