// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "qdf-swift",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "QuantumDeepField", targets: ["QuantumDeepField"]),
        .executable(name: "qdf", targets: ["qdf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian: libcairo2-dev, zlib1g-dev; see scripts/setup).
        .systemLibrary(name: "CCairo", path: "Sources/CCairo", pkgConfig: "cairo",
                       providers: [.apt(["libcairo2-dev"]), .brew(["cairo"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // libbz2 has no pkg-config file on Debian 12; the module map links -lbz2.
        .systemLibrary(name: "CBzip2", path: "Sources/CBzip2",
                       providers: [.apt(["libbz2-dev"]), .brew(["bzip2"])]),
        .target(
            name: "QuantumDeepField",
            dependencies: ["CCairo", "CZlib", "CBzip2"],
            path: "Sources/QuantumDeepField",
            // The bundled model and the demo's molecules (see BundledModel.swift).
            resources: [.copy("Resources")]
        ),
        .executableTarget(
            name: "qdf",
            dependencies: [
                "QuantumDeepField",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/qdf"
        ),
        .testTarget(
            name: "QuantumDeepFieldTests",
            // The executable is a dependency so that tests can run `qdf` as a user would
            // (signals, exit codes): it is built next to the test bundle.
            dependencies: ["QuantumDeepField", "qdf", "CZlib"],
            path: "Tests/QuantumDeepFieldTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
