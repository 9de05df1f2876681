// swift-tools-version: 6.0
import PackageDescription

// Targets along the seams of the method (see ARCHITECTURE.md):
//   QuantumDeepField  the numerics: linear algebra, basis, grid, molecules, model, training,
//                     safetensors; links nothing but BLAS (loaded at run time)
//   QDFFormats        molecule files, compression and archives, cube files, PyTorch
//                     import, QM9 data-set builders (zlib, bzip2)
//   QDFDensity        the electron density anywhere in space, cubes, profiles, comparisons
//   QDFReports        figures and reports (cairo)
//   QDFDistributed    data-parallel training and sharded prediction over MPI (libmpi
//                     loaded at run time: building needs no MPI)
//   qdf               the command line, on top of all four
let package = Package(
    name: "qdf-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QuantumDeepField", targets: ["QuantumDeepField"]),
        .library(name: "QDFFormats", targets: ["QDFFormats"]),
        .library(name: "QDFDensity", targets: ["QDFDensity"]),
        .library(name: "QDFReports", targets: ["QDFReports"]),
        .library(name: "QDFDistributed", targets: ["QDFDistributed"]),
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
            path: "Sources/QuantumDeepField",
            // The bundled model and the demo's molecules (see BundledModel.swift).
            resources: [.copy("Resources")]
        ),
        .target(name: "QDFFormats", dependencies: ["QuantumDeepField", "CZlib", "CBzip2"], path: "Sources/QDFFormats"),
        .target(name: "QDFDensity", dependencies: ["QuantumDeepField", "QDFFormats"], path: "Sources/QDFDensity"),
        .target(name: "QDFReports", dependencies: ["QuantumDeepField", "QDFFormats", "QDFDensity", "CCairo"],
                path: "Sources/QDFReports"),
        .target(name: "QDFDistributed", dependencies: ["QuantumDeepField"], path: "Sources/QDFDistributed"),
        .executableTarget(
            name: "qdf",
            dependencies: [
                "QuantumDeepField", "QDFFormats", "QDFDensity", "QDFReports", "QDFDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/qdf"
        ),
        .testTarget(
            name: "QuantumDeepFieldTests",
            // The executable is a dependency so that tests can run `qdf` as a user would
            // (signals, exit codes): it is built next to the test bundle.
            dependencies: ["QuantumDeepField", "QDFFormats", "QDFDensity", "QDFReports", "QDFDistributed", "qdf", "CZlib"],
            path: "Tests/QuantumDeepFieldTests",
            // Molecule files written by RDKit, ASE and Open Babel (and the script that made them).
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
