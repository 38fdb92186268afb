// swift-tools-version:6.0
import PackageDescription

// An outside program embedding mirrord's three library products, as a user of the libraries
// would: only their public API is reachable from here. `make embed-test` builds and runs it; the
// root package does not know it (it is no target of mirrord's).
let package = Package(
    name: "EmbeddingPackage",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mirrord", path: "../..")
    ],
    targets: [
        // Tracks a machine's writes with uffd (or mprotect) and checks what harvest returns; also
        // compiles and runs the code of the DocC articles.
        .executableTarget(
            name: "EmbedCheck",
            dependencies: [
                .product(name: "MirrorCore", package: "mirrord"),
                .product(name: "MirrorEmulation", package: "mirrord"),
                .product(name: "MirrorLinux", package: "mirrord"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
