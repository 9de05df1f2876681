import ArgumentParser
import Foundation
import QuantumDeepField

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Frozen-orbital probe: how much of a data set's property a trained model's orbitals already hold.",
        discussion: """
        Keeps everything of the model (orbitals, energy functional) and fits only a new \
        property head by least squares to the data set's training molecules, on top of a \
        per-element baseline with --element-baseline (seconds to a minute). Reports the MAE \
        on train, val and test beside the element-count baseline alone (a least-squares fit \
        on the counts of each element and a constant). A probe clearly below the baseline says the learned \
        features carry the property: fine-tuning (qdf train --init-from) should start well. \
        With --operation dipole nothing is fitted: the figures are those of |μ| computed from \
        the model's density as it is (docs/model.md §20), against a data set of μ in debye. \
        The model is not changed; -o writes the probed model.
        """)

    @Option(name: .long, help: "The trained model (safetensors), or 'bundled'. Default: the bundled model.")
    var model: String?

    @Argument(help: "Dataset folder with train.txt (fitted), val.txt and test.txt (reported).")
    var dataset: String

    @Option(name: .shortAndLong, help: "Write the probed model (the source with the fitted head) here.")
    var output: String?

    @Option(name: [.customLong("operation"), .customLong("readout")],
            help: "Readout: sum, mean, or dipole (|μ| of the model's density, nothing fitted). Default: from the data set's dataset.json (extensive → sum, intensive → mean), else sum.")
    var operation: String?

    @Flag(inversion: .prefixedNo, help: "Fit per-element reference values first (a sum over the atoms); the head fits the rest. (default: off; the element-count baseline is reported beside the probe either way)")
    var elementBaseline = false

    @Option(help: "Ridge, relative to the diagonal of the normal equations.")
    var ridge = 1e-7

    func validate() throws {
        if let op = operation, Readout(rawValue: op) == nil { throw ValidationError("--operation must be \(Readout.names)") }
        guard ridge >= 0, ridge.isFinite else { throw ValidationError("--ridge must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let start = Date()
            let (source, path, sourceName, sourceSHA256) = try loadSourceModel(model, purpose: "to probe")
            let data = try Dataset.load(directory: dataset)
            let readout = try data.chooseReadout(requested: operation.flatMap(Readout.init(rawValue:)))
            if let w = readout.warning { log("warning: " + w) }
            log(readout.reason)
            let r = try FineTuning.probe(source: source, sourceName: sourceName,
                                         sourceSHA256: sourceSHA256, dataset: data, operation: readout.readout,
                                         elementBaseline: elementBaseline, ridge: ridge)
            let coefficients = source.hyper.dim + 1
            if data.train.count <= coefficients {
                log("warning: the head has \(coefficients) coefficients per output and train.txt \(data.train.count) molecules: the fit interpolates them, so the val and test figures say little")
            }
            if !r.addedOrbitals.isEmpty {
                log("note: the model lacks \(r.addedOrbitals.count) orbital type(s) of the data set (\(r.addedOrbitals.joined(separator: " "))); their rows are untrained")
            }
            let unit = data.unit
            print("split\tmolecules\tMAE_probe(\(unit))\tMAE_baseline(\(unit))")
            for (name, n) in [("train", data.train.count), ("val", data.val.count), ("test", data.test.count)] where n > 0 {
                func f(_ v: [Double]) -> String { v.map { String(format: "%.5f", $0) }.joined(separator: " ") }
                print("\(name)\t\(n)\t\(f(r.mae[name]!))\t\(f(r.baselineMAE[name]!))")
            }
            if let out = output {
                try r.model.save(path: out)
                log("wrote \(out)")
            }
            log(String(format: "probe of %@ on %@: %.1f s", path, data.name, Date().timeIntervalSince(start)))
        }
    }
}
