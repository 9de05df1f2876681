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
        .target(
            name: "QuantumDeepField",
            path: "Sources/QuantumDeepField"
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
            dependencies: ["QuantumDeepField"],
            path: "Tests/QuantumDeepFieldTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
