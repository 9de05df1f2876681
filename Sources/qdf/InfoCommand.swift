import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports
import QDFDistributed

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the version, the BLAS library and kernel in use, whether MPI is available, and optionally a model's details.")

    @Option(help: "A model file to describe.")
    var model: String?

    func run() throws {
        try reportingErrors {
            // Under mpirun/srun: join the job, and let rank 0 describe it.
            let group = try joinMPIIfLaunched(workers: nil)
            if let g = group, g.rank != 0 { g.finish(); return }
            print("qdf \(qdfVersion)")
            print(BLAS.shared.info.description)
            if let bf16 = try? BF16Compute.available() {
                print("  --precision bf16: available (\(bf16.blas.info.name)); this CPU \(BF16Compute.cpuHasBF16 ? "has bf16 instructions" : "has no AVX512_BF16 or AMX-BF16, so it is emulated and slower than float32")")
            } else {
                print("  --precision bf16: not available (no GEMM library with bfloat16 GEMMs loads; `scripts/setup --blas` installs oneMKL)")
            }
            let cores = availableCores
            if let g = group {
                print("MPI: \(g.size) ranks, workers per rank \(g.workersPerRank.map(String.init).joined(separator: " ")); \(g.library)")
            } else {
                print(mpiDescription())
            }
            print("parallelism: \(cores) molecule-parallel worker\(cores == 1 ? "" : "s") (one per core it may use), compute backend: \(defaultCompute.name), BLAS threads per worker: \(BLAS.shared.threads)\(BLAS.shared.userSetThreads ? " (set in the environment)" : "")")
            if let path = model {
                let m = try QDFModel.load(path: path)
                let h = m.hyper
                print("model: \(path)")
                print("  basis \(h.basisSet.name), radius \(h.radius) Å, grid interval \(h.gridInterval) Å (\(m.sphere.count) points per atom)")
                print("  dim \(h.dim), \(h.layerFunctional) functional layers, HK hidden \(h.hiddenHK), \(h.layerHK) HK layers, readout \(h.operation.rawValue), \(h.outputs) output(s)")
                print("  orbital dictionary: \(m.dictionary.count) types; elements \(m.dictionary.elements(basis: h.basisSet).joined(separator: " "))")
                print("  frame: \(h.frame.rawValue) (\(h.frame == .canonical ? "molecules are moved into their canonical frame: the same prediction in any orientation" : "molecules are placed as given: predictions depend on the orientation; --frame canonical changes that"); docs/model.md §17)")
                if let e = h.environment {
                    print("  orbital environment: \(e.layers) layers, \(e.features) features, \(e.gaussians) Gaussians, cutoff \(formatParameter(e.cutoff)) Å (docs/model.md §18)")
                } else {
                    print("  orbital environment: none (coefficients by orbital type alone, the reference)")
                }
                print("  potential input: " + (h.potentialFeatures > 0
                    ? "\(h.potentialFeatures) Gaussians of the external potential into the first functional layer (docs/model.md §19)"
                    : "none (the functional sees ψ alone, the reference)"))
                print("  parameters: \(m.layout.totalCount)")
                for k in m.metadata.keys.sorted() { print("  \(k): \(m.metadata[k]!)") }
            }
            group?.finish()
        }
    }
}
