import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure sgemm at the model's shapes (the machine's limit), training and inference speed against it, memory, and scaling with molecule size.",
        discussion: """
        Everything is measured side by side in one run, so the ratios hold on a noisy machine. \
        Without --train/--infer, deterministic synthetic QM9-like molecules are used.
        """)

    @Option(help: "Training molecules (QDF text or XYZ); the first --train-molecules are used.") var train: String?
    @Option(help: "Molecules for the training measurement.") var trainMolecules = 400
    @Option(help: "A file to predict for the inference measurement (read from disk as part of it).") var infer: String?
    @Option(help: "Synthetic molecules for inference when no --infer file is given.") var inferMolecules = 1000
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Only compare the GEMM libraries that load (openblas, scipy-openblas, blis, mkl) at the model's shapes, and record the fastest for this CPU model: later runs load it first (QDF_BLAS overrides).")
    var compareBlas = false
    @Flag(inversion: .prefixedNo, help: "With --compare-blas: record the fastest library for this CPU model (in $QDF_CACHE_DIR, $XDG_CACHE_HOME/qdf or ~/.cache/qdf, gemm-choice.json).")
    var record = true

    func run() throws {
        try reportingErrors {
            if compareBlas {
                let cores = availableCores
                let results = Benchmark.compareLibraries(cores: cores)
                // The choice's measure, once per library: the harmonic mean over the model's shapes.
                let means = results.map { GEMMChoice.harmonicMean($0.gemm.map(\.gflops)) }
                if json {
                    let obj: [[String: Any]] = zip(results, means).map { r, mean in
                        ["name": r.info.name, "library": r.info.library, "config": r.info.config, "kernel": r.info.coreName,
                         "gemm": r.gemm.map(\.json),
                         "limit_gflops": r.gemm.map(\.gflops).max() ?? 0,
                         "harmonic_mean_gflops": mean,
                         "bf16_gemm": (r.bf16 ?? []).map(\.json)]
                    }
                    let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    print("GEMM libraries at the model's shapes, \(cores) cores (GFLOP/s; in use: \(BLAS.shared.info.name), \(BLAS.shared.info.choice))")
                    for (r, mean) in zip(results, means) {
                        print("\(r.info.name): \(r.info.library), \(r.info.config), kernel \(r.info.coreName)")
                        for g in r.gemm { print(String(format: "  %-52@ %7.1f", g.label as NSString, g.gflops)) }
                        print(String(format: "  %-52@ %7.1f", "limit" as NSString, r.gemm.map(\.gflops).max() ?? 0))
                        print(String(format: "  %-52@ %7.1f", "harmonic mean over the shapes (the choice's measure)" as NSString, mean))
                        if let bf = r.bf16 {
                            print("  with bf16 operands (--precision bf16, rounding included\(BF16Compute.cpuHasBF16 ? "" : "; this CPU has no bf16 instructions: emulated"))")
                            for g in bf { print(String(format: "    %-50@ %7.1f", g.label as NSString, g.gflops)) }
                        }
                    }
                }
                guard record, !results.isEmpty else { return }
                let stamp = ISO8601DateFormatter().string(from: Date())
                let choice = GEMMChoice(cpu: GEMMChoice.cpuKey(), measured: stamp,
                                        gflops: Dictionary(zip(results.map(\.info.name), means), uniquingKeysWith: max))
                let path = GEMMChoice.storePath()
                try choice.save(path: path)
                let line = "recorded in \(path): on \(choice.cpu), qdf now loads \(choice.chosen) first (QDF_BLAS overrides)"
                if json { log(line) } else { print(line) }
                return
            }
            let trainSet = try train.map { try readMolecules($0) }
            let r = try Benchmark.run(trainSet: trainSet, trainMolecules: trainMolecules, inferFile: infer,
                                      openInfer: infer.map { file in { try openMoleculeFile(file) } },
                                      inferMolecules: inferMolecules) { stage in
                if stderrIsTTY && !json { log("… \(stage)") }
            }
            if json { print(benchJSON(r)) } else { print(benchTable(r)) }
        }
    }
}

func benchTable(_ r: BenchmarkReport) -> String {
    var s = "qdf bench — \(r.cores) cores, \(r.blas.library), kernel \(r.blas.coreName), \(r.blas.threads) BLAS threads\n\n"
    s += "sgemm at the model's shapes                         GFLOP/s\n"
    func pad(_ t: String) -> String { t.count >= 48 ? t : t + String(repeating: " ", count: 48 - t.count) }
    for g in r.gemm { s += "  " + pad(g.label) + String(format: " %7.1f\n", g.gflops) }
    s += "  " + pad("limit (best of the above)") + String(format: " %7.1f\n\n", r.gemmLimit)
    s += String(format: "training (dim 250, 3+3 layers, batch 4; %@)\n", r.trainSource)
    s += String(format: "  %d molecules in %.2f s: %.1f molecules/s, %.1f GFLOP/s = %.0f%% of the limit\n\n",
                r.trainMolecules, r.trainSeconds, r.trainMoleculesPerSecond, r.trainAchievedGFLOPS,
                100 * r.trainAchievedGFLOPS / max(r.gemmLimit, 1e-9))
    s += String(format: "inference (%@, reading included)\n", r.inferSource)
    s += String(format: "  %d molecules in %.2f s: %.1f molecules/s, %.1f GFLOP/s = %.0f%% of the limit\n\n",
                r.inferMolecules, r.inferSeconds, r.inferMoleculesPerSecond, r.inferAchievedGFLOPS,
                100 * r.inferAchievedGFLOPS / max(r.gemmLimit, 1e-9))
    s += String(format: "canonical frame (docs/model.md §17; one thread, every distinct frame formed)\n  %.1f µs per molecule, %.3f frames per molecule: %.2f%% of a molecule's inference time on one core\n\n",
                r.frameMicroseconds, r.framesPerMolecule,
                100 * r.frameMicroseconds / 1e6 / max(r.inferSeconds * Double(r.cores) / Double(max(r.inferMolecules, 1)), 1e-12))
    s += phaseTable(title: "where inference's time goes (thread-seconds; shares of workers × wall time)", phases: r.inferPhases,
                    gemm: r.inferGEMMSeconds, total: r.inferThreadSeconds, forwardOnly: false)
    s += phaseTable(title: "where training's time goes (forward stages timed; the backward passes are in 'other')", phases: r.trainPhases,
                    gemm: r.trainGEMMSeconds, total: r.trainThreadSeconds, forwardOnly: true)
    s += "inference time against molecule size\n  atoms   molecules   ms/molecule\n"
    for p in r.scaling { s += String(format: "  %5d   %9d   %8.2f\n", p.atoms, p.molecules, p.msPerMolecule) }
    s += String(format: "  linear fit: %.3f ms + %.3f ms/atom, R² = %.3f\n\n", r.scalingFit.intercept, r.scalingFit.slope, r.scalingFit.r2)
    s += String(format: "peak resident memory: %.0f MiB", r.peakResidentMiB)
    return s
}

/// A phase table: each phase's thread-seconds and share, the GEMMs' share, and the rest.
func phaseTable(title: String, phases: [Phase: Double], gemm: Double, total: Double, forwardOnly: Bool) -> String {
    guard total > 0 else { return "" }
    var s = title + "\n"
    var timed = 0.0
    for p in Phase.allCases {
        guard let v = phases[p], v > 0 else { continue }
        timed += p == .reading ? 0 : v
        s += String(format: "  %-52@ %8.2f s  %5.1f%%\n", p.description as NSString, v, 100 * v / total)
    }
    s += String(format: "  %-52@ %8.2f s  %5.1f%%\n", "other (threads waiting, scheduling\(forwardOnly ? ", backward, Adam" : ""))" as NSString,
                max(0, total - timed), 100 * max(0, total - timed) / total)
    s += String(format: "  %-52@ %8.2f s  %5.1f%%\n\n", "of all the above: inside GEMM calls" as NSString, gemm, 100 * gemm / total)
    return s
}

extension BenchmarkReport.GEMM {
    /// One measured shape as the JSON reports write it.
    var json: [String: Any] { ["label": label, "m": m, "n": n, "k": k, "gflops": gflops] }
}

func benchJSON(_ r: BenchmarkReport) -> String {
    let obj: [String: Any] = [
        "cores": r.cores, "blas": r.blas.library, "kernel": r.blas.coreName, "blas_threads": r.blas.threads,
        "gemm": r.gemm.map(\.json),
        "gemm_limit_gflops": r.gemmLimit,
        "train": ["molecules": r.trainMolecules, "seconds": r.trainSeconds, "molecules_per_s": r.trainMoleculesPerSecond,
                  "gflops": r.trainAchievedGFLOPS, "fraction_of_limit": r.trainAchievedGFLOPS / max(r.gemmLimit, 1e-9),
                  "source": r.trainSource],
        "infer": ["molecules": r.inferMolecules, "seconds": r.inferSeconds, "molecules_per_s": r.inferMoleculesPerSecond,
                  "gflops": r.inferAchievedGFLOPS, "fraction_of_limit": r.inferAchievedGFLOPS / max(r.gemmLimit, 1e-9),
                  "source": r.inferSource],
        "scaling": r.scaling.map { ["atoms": $0.atoms, "molecules": $0.molecules, "ms_per_molecule": $0.msPerMolecule] },
        "scaling_fit": ["intercept_ms": r.scalingFit.intercept, "slope_ms_per_atom": r.scalingFit.slope, "r2": r.scalingFit.r2],
        "peak_resident_mib": r.peakResidentMiB,
        "canonical_frame": ["microseconds_per_molecule": r.frameMicroseconds, "frames_per_molecule": r.framesPerMolecule],
        "infer_phases": Dictionary(uniqueKeysWithValues: r.inferPhases.map { ($0.key.key, $0.value) }),
        "infer_gemm_seconds": r.inferGEMMSeconds, "infer_thread_seconds": r.inferThreadSeconds,
        "train_phases": Dictionary(uniqueKeysWithValues: r.trainPhases.map { ($0.key.key, $0.value) }),
        "train_gemm_seconds": r.trainGEMMSeconds, "train_thread_seconds": r.trainThreadSeconds,
    ]
    let data = try! JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
