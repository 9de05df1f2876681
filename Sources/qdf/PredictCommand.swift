import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict properties of molecules (QDF text, XYZ/extended XYZ, SDF/MOL V2000/V3000, PDB/PDBQT, mol2; .gz/.bz2 too; - for standard input).",
        discussion: """
        Each molecule is checked first (elements the model knows, no recorded charge, closed \
        shell, a plausible geometry in Å): a molecule that fails is refused with the file, \
        line and reason, unless the matching --allow-* option is given. Output formats \
        (--format, or from the output's extension): tsv (the columns ID, Correct, Predict, \
        Error, as published; Correct and Error only when the input has property values; \
        suffixed _0, _1, ... for several outputs), csv and jsonl/json (with the source file, \
        line, atoms, property name and unit per row). A summary goes to standard error. \
        Under mpirun/srun with several processes each rank predicts its share and rank 0 \
        writes the output, byte for byte as one process with all ranks' workers would \
        (docs/distributed.md).
        """)

    @Option(name: .long, help: "The model file (safetensors). Default: the bundled model (docs/model-card.md).")
    var model: String?

    @Argument(help: "Molecule files: QDF text (.txt), XYZ or extended XYZ (.xyz, .extxyz), SDF/MOL V2000 or V3000 (.sdf, .mol), PDB/PDBQT (.pdb, .pdbqt), mol2 (.mol2); .gz or .bz2 compressed too; other names by content; - reads standard input.")
    var inputs: [String]

    @Option(name: .long, help: "Read this property as the correct value (extended XYZ key, SDF data item, QM9 .xyz name such as U0); repeatable.")
    var property: [String] = []

    @Option(name: .shortAndLong, help: "Write the predictions here (default, or -: standard output).")
    var output: String?

    @Option(name: .long, help: "Output format tsv, csv, json or jsonl (default: from the output's extension, else tsv); a molecule format (xyz, extxyz, sdf, pdb, mol2, qdf) given here sets the input format. Repeatable.")
    var format: [String] = []

    @Option(name: .long, help: "Input format for every input (xyz, extxyz, sdf, mol, pdb, pdbqt, mol2, qdf), whatever its name or content.")
    var inputFormat: String?

    @Option(help: "Predict each molecule in K fixed orientations (the first as given) and write their mean, with their standard deviation as a Spread column.")
    var rotations = 1

    @OptionGroup var chemistry: ChemistryOptions

    @OptionGroup var frameOptions: FrameOptions

    @Flag(inversion: .prefixedNo, help: "With the canonical frame: average over every canonical frame a molecule has where a degenerate moment or an undecided axis sign leaves several (exactly invariant), rather than predict in the first alone.")
    var frameAveraging = true

    @Flag(help: "Skip molecules with elements the model never learned, and list them.")
    var skipUnknown = false

    @Flag(help: "Print the error by number of atoms (count, MAE, RMSE per size) to standard error.")
    var byAtoms = false

    @Option(help: "Molecules per batch.")
    var batchSize = Predictor.defaultBatchSize

    @Option(help: "Molecule-parallel workers, each with its own engine (BLAS single-threaded unless OPENBLAS_NUM_THREADS is set). Default: the number of cores, at most 8.")
    var workers: Int?

    @Option(help: "The GEMMs' arithmetic: float32 (the default) or bf16 (operands rounded to bfloat16, sums in Float32, through oneMKL; faster only on CPUs with AVX512_BF16 or AMX, values within ≈ 0.01 eV: docs/speed.md).")
    var precision: Precision = .float32

    /// The output and input formats the options name.
    func formats() throws -> (PredictionFormat, MoleculeFileFormat?) {
        var out: PredictionFormat? = nil
        var input = try inputFormat.map { name -> MoleculeFileFormat in
            guard let f = MoleculeFileFormat(name: name) else { throw ValidationError("--input-format: unknown molecule format '\(name)'") }
            return f
        }
        for f in format {
            if let p = PredictionFormat(rawValue: f.lowercased()) { out = p }
            else if let m = MoleculeFileFormat(name: f) { input = m }
            else { throw ValidationError("--format: '\(f)' is neither an output format (tsv, csv, json, jsonl) nor a molecule format (xyz, sdf, pdb, mol2, qdf)") }
        }
        if out == nil, let o = output, o != "-" {
            out = PredictionFormat(path: o)
            if out == nil, (o as NSString).pathExtension != "" {
                throw ValidationError("-o \(o): the extension names no output format (.tsv, .csv, .json, .jsonl); give --format")
            }
        }
        return (out ?? .tsv, input)
    }

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one molecule file (or - for standard input)") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard rotations >= 1, rotations <= 1000 else { throw ValidationError("--rotations must be in 1...1000") }
        guard inputs.filter({ $0 == "-" }).count <= 1 else { throw ValidationError("standard input (-) can be read once") }
        _ = try formats()
    }

    func run() throws {
        try reportingErrors {
            let group = try joinMPIIfLaunched(workers: workers)
            let (outFormat, inFormat) = try formats()
            let (loaded, modelPath) = try loadModelAndPath(model)
            let m = frameOptions.apply(to: loaded, log: group.map { $0.rank == 0 } ?? true)
            var layerCompute: (any ComputeBackend)? = nil
            if precision == .bf16 {
                let bf16 = try BF16Compute.available()
                layerCompute = bf16
                if group.map({ $0.rank == 0 }) ?? true {
                    log("--precision bf16: the energy functional's upper layers in \(bf16.name)" + (BF16Compute.cpuHasBF16 ? ""
                        : "; this CPU has no AVX512_BF16 or AMX-BF16 instructions, so the library emulates them: slower than float32"))
                }
            }
            let predictor = Predictor(model: m, batchSize: batchSize, compute: defaultCompute, layerCompute: layerCompute)
            if let w = workers { predictor.workers = max(1, w) }
            predictor.frameAveraging = frameAveraging
            if let g = group {
                // Sharded (docs/distributed.md): every rank reads the input; rank 0 alone writes.
                predictor.workers = g.workersPerRank[g.rank]
                predictor.group = g
            }
            let isRoot = group.map { $0.rank == 0 } ?? true
            let check = MoleculeCheck(model: m)
            let readers = try inputs.map {
                chemistry.checked(try openMoleculeFile($0, properties: property, format: inFormat), check: check, skipUnknown: skipUnknown)
            }
            let labels = OutputLabels(metadata: m.metadata, outputs: m.hyper.outputs)
            var writer: PredictionWriter? = nil
            let open = {
                writer = PredictionWriter(format: outFormat, labels: labels, sink: try LineSink(path: output),
                                          withSpread: rotations > 1, model: m.metadata["model_name"] ?? modelPath)
            }
            if let g = group { try g.onRoot("open the output", open) } else { try open() }
            var bySize = ErrorBySize(outputs: m.hyper.outputs)
            let summary = try predictor.run(readers: readers, rotations: rotations, interactive: inputs.contains("-")) { r in
                try writer?.write(r)
                if byAtoms && r.correct.count == m.hyper.outputs {
                    bySize.add(atoms: r.atomCount, errors: zip(r.predicted, r.correct).map { Double($0) - $1 })
                }
            }
            guard isRoot, let writer else { group?.finish(); return }
            try writer.finish()
            let skipped = readers.flatMap(\.skipped)
            for s in skipped { log("skipped \(s.id): \(s.reason)") }
            var line = "\(summary.molecules) molecules"
            if !skipped.isEmpty { line += " (\(skipped.count) skipped)" }
            if rotations > 1 { line += ", \(rotations) orientations each" }
            if let mae = summary.mae { line += ", " + labels.maePhrase(mae) }
            line += String(format: ", %.2f s, %.1f molecules/s", summary.seconds, Double(summary.molecules) / max(summary.seconds, 1e-9))
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
