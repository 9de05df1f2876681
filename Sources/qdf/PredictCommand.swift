import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports
import QDFDistributed

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict properties of molecules (QDF text, XYZ/extended XYZ, SDF/MOL; optionally .gz).",
        discussion: """
        Writes a TSV with columns ID, Correct, Predict, Error (Correct and Error only when \
        the input has property values; suffixed _0, _1, ... for several outputs). A summary \
        goes to standard error. Under mpirun/srun with several processes each rank predicts its \
        share and rank 0 writes the output, byte for byte as one process with all ranks' workers \
        would (docs/distributed.md).
        """)

    @Option(name: .long, help: "The model file (safetensors). Default: the bundled model (docs/model-card.md).")
    var model: String?

    @Argument(help: "Molecule files: QDF text (.txt), XYZ or extended XYZ (.xyz, .extxyz, multi-frame), SDF/MOL V2000 (.sdf, .mol); .gz or .bz2 compressed too.")
    var inputs: [String]

    @Option(name: .long, help: "Read this property as the correct value (extended XYZ key, SDF data item, QM9 .xyz name such as U0); repeatable.")
    var property: [String] = []

    @Option(name: .shortAndLong, help: "Write the predictions here (default: standard output).")
    var output: String?

    @Flag(help: "Skip molecules with elements the model never learned, and list them.")
    var skipUnknown = false

    @Flag(help: "Print the error by number of atoms (count, MAE, RMSE per size) to standard error.")
    var byAtoms = false

    @Option(help: "Molecules per batch.")
    var batchSize = 32

    @Option(help: "Molecule-parallel workers, each with its own engine (BLAS single-threaded unless OPENBLAS_NUM_THREADS is set). Default: the number of cores, at most 8.")
    var workers: Int?

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one molecule file") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let group = try joinMPIIfLaunched(workers: workers)
            let m = try loadModel(model)
            let predictor = Predictor(model: m, batchSize: batchSize)
            if let w = workers { predictor.workers = max(1, w) }
            // Peek at the first molecule to know whether there are property values.
            let readers = try inputs.map { try openMoleculeFile($0, properties: property) }
            let sink: OutputSink
            if let g = group {
                // Sharded (docs/distributed.md): every rank reads the input; rank 0 alone writes.
                predictor.workers = g.workersPerRank[g.rank]
                predictor.group = g
                var rootSink: OutputSink? = nil
                try g.onRoot("open the output") { rootSink = try OutputSink(path: output) }
                guard let s = rootSink else {
                    _ = try predictor.run(readers: readers, skipUnknown: skipUnknown) { _ in }
                    g.finish()
                    return
                }
                sink = s
            } else {
                sink = try OutputSink(path: output)
            }
            var header: Bool? = nil
            var bySize = ErrorBySize(outputs: m.hyper.outputs)
            var errors = [Double](repeating: 0, count: m.hyper.outputs)
            let summary = try predictor.run(readers: readers, skipUnknown: skipUnknown) { p in
                let withCorrect = !p.correct.isEmpty
                if header == nil {
                    header = withCorrect
                    try sink.write(predictionColumns(outputs: m.hyper.outputs, withCorrect: withCorrect).joined(separator: "\t"))
                }
                try sink.write(predictionRow(p, withCorrect: withCorrect && header == true))
                if byAtoms && p.correct.count == errors.count {
                    for q in errors.indices { errors[q] = Double(p.predicted[q]) - p.correct[q] }
                    bySize.add(atoms: p.atomCount, errors: errors)
                }
            }
            if header == nil {
                try sink.write(predictionColumns(outputs: m.hyper.outputs, withCorrect: false).joined(separator: "\t"))
            }
            try sink.finish()
            for s in summary.skipped { log("skipped \(s.id): \(s.reason)") }
            var line = "\(summary.molecules) molecules"
            if !summary.skipped.isEmpty { line += " (\(summary.skipped.count) skipped)" }
            let labels = OutputLabels(metadata: m.metadata, outputs: m.hyper.outputs)
            if let mae = summary.mae {
                line += ", " + labels.maePhrase(mae)
            }
            line += String(format: ", %.2f s, %.1f molecules/s", summary.seconds,
                           Double(summary.molecules) / max(summary.seconds, 1e-9))
            log(line)
            if byAtoms {
                if bySize.overall.count == 0 {
                    log("--by-atoms: no molecule has property values to compare with")
                } else {
                    log(bySize.table(unit: m.metadata["unit"], trainRange: m.metadata["train_atoms"].flatMap(parseAtomRange),
                                     labels: labels))
                }
            }
            group?.finish()
        }
    }
}

/// Lines to standard output, or to a file written atomically when done (streamed
/// through a temporary file, so memory stays constant).
struct OutputSink {
    let writer: AtomicTextWriter?
    init(path: String?) throws {
        if let p = path {
            let dir = (p as NSString).deletingLastPathComponent
            var isDir: ObjCBool = false
            if !dir.isEmpty && !(FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue) {
                throw QDFError("the output folder does not exist", file: p)
            }
            writer = try AtomicTextWriter(path: p)
        } else {
            writer = nil
        }
    }
    func write(_ line: String) throws {
        if let w = writer { try w.write(line) } else { print(line) }
    }
    func finish() throws { try writer?.commit() }
}
