// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "mirrord",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mirrord", targets: ["mirrord"]),
        .library(name: "MirrorCore", targets: ["MirrorCore"]),
        .library(name: "MirrorEmulation", targets: ["MirrorEmulation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Thin C helpers the Swift standard library does not reach: futex wait/wake, thread names,
        // a CPU pause, the streaming-store copy, and the plain C harvest the benchmark compares with.
        .target(name: "CMirrorShims"),
        // The domain: geometry, the hardware-abstraction protocol, the duplex engine, configuration.
        .target(name: "MirrorCore", dependencies: ["CMirrorShims"]),
        // userfaultfd and PAGEMAP_SCAN, declared by hand (Debian 12's headers predate them).
        .target(name: "CMirrorLinux"),
        // Dirty tracking by the real MMU: userfaultfd write-protect (async) + PAGEMAP_SCAN.
        .target(
            name: "MirrorLinux",
            dependencies: ["MirrorCore", "CMirrorLinux"]
        ),
        // The emulated active/spare pair behind the protocol: modules, CPUs, DMA engine, blackout.
        .target(
            name: "MirrorEmulation",
            dependencies: ["MirrorCore", "MirrorLinux", "CMirrorShims"]
        ),
        // libsystemd (sd-daemon.h, sd-journal.h) from Debian's libsystemd-dev.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // sd_notify, the journald log handler and the message catalog ids.
        .target(
            name: "MirrorSystemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        // The daemon executable: command line, configuration file, signals, wiring.
        .executableTarget(
            name: "mirrord",
            dependencies: [
                "MirrorCore",
                "MirrorEmulation",
                "MirrorLinux",
                "MirrorSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "MirrorCoreTests", dependencies: ["MirrorCore"]),
        .testTarget(name: "MirrorEmulationTests", dependencies: ["MirrorCore", "MirrorEmulation", "MirrorLinux"]),
        .testTarget(
            name: "MirrorSystemdTests",
            dependencies: ["MirrorSystemd", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
