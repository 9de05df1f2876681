import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

@main
enum QDFMain {
    /// The GEMM library is chosen once, from the environment, before any command runs.
    static func main() {
        BLAS.select(environment: ProcessInfo.processInfo.environment)
        QDF.main()
    }
}

struct QDF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qdf",
        abstract: "Quantum deep field: molecular energies and electron densities from atom positions.",
        version: qdfVersion,
        subcommands: [Demo.self, Train.self, Predict.self, Check.self, Density.self, CompareDensity.self, ReportCmd.self,
                      DatasetCmd.self, RefitReadout.self, Probe.self, ImportTorch.self, Bench.self, BenchMPI.self, Info.self])
}
