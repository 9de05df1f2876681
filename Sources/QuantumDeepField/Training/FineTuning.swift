import Foundation

// The model a fine-tuning run starts from (`qdf train --init-from MODEL`, docs/training.md
// "Fine-tuning"): a trained model's architecture and parameters, with a new property head
// for the data set's properties and its orbital dictionary extended by the data set's
// orbital types that the source lacks.

/// Building the starting point of a fine-tuning run from a trained model.
public enum FineTuning {
    /// The starting model and what was changed to make it.
    public struct Start: Sendable {
        /// The model to train: the source's parameters, a new head, extended dictionary.
        public var model: QDFModel
        /// Orbital types of the data set that the source model lacks, in the order added
        /// (their coefficient rows, ζ and environment rows are initialized as a new model's).
        public var addedOrbitals: [String]
        /// The least-squares fit of the head, when `head` was `.leastSquares` (training-set MAE
        /// per output of the fitted head).
        public var headFit: ReadoutRefit.Result?
    }

    /// How the new property head starts.
    public enum Head: String, Sendable, CaseIterable {
        /// Fitted by least squares to the training molecules over the source's features (the
        /// probe's head): training starts where the probe ends, and the first steps do not
        /// push large errors from a random head back into the trained features.
        case leastSquares = "lsq"
        /// Initialized as a new model's (§9).
        case random
    }

    /// Tensors with one row per orbital type (docs/model.md §10, §18): rows are carried over
    /// by orbital name.
    package static let orbitalTypeTensors: Set<String> = ["coefficient.weight", "zeta.weight",
                                                   "environment.embedding.weight", "environment.gate.weight"]

    /// The start of a fine-tuning run on `dataset` from `source`.
    ///
    /// Everything but the property head keeps the source's architecture and values: the
    /// orbital coefficients and exponents (and the orbital environment), the energy
    /// functional's layers (and the potential input), the HK map, the frame. The head
    /// (`W_property.*`, P = the data set's outputs) and the rows of orbital types the
    /// source lacks are initialized as a new model of `seed` would be (§9). `operation` is
    /// the readout for the data set's property kind (sum for extensive, mean for intensive);
    /// with `elementBaseline` a per-element reference is fitted to the data set's training
    /// molecules. `sourceName` and `sourceSHA256` (of the model file) go into the metadata
    /// (`init_from`, `init_from_sha256`), with the added orbital types
    /// (`init_from_added_orbitals`). The source's own training metadata is not carried over.
    ///
    /// With `head` `.leastSquares` (the default) the head is then fitted by least squares to
    /// the training molecules (`ReadoutRefit`, always over 2 shares of the molecules, so that
    /// every MPI rank and every machine computes the same head). With the dipole readout
    /// (§20) there is no head to fit: the output is the density's |μ| from the start.
    public static func start(from source: QDFModel, sourceName: String, sourceSHA256: String, dataset: Dataset,
                             operation: Readout, elementBaseline: Bool, seed: UInt64,
                             head: Head = .leastSquares) throws -> Start {
        var hyper = source.hyper
        hyper.outputs = dataset.outputs
        hyper.operation = operation
        var dictionary = source.dictionary
        let before = dictionary.count
        for ms in [dataset.train, dataset.val, dataset.test] { for m in ms { dictionary.add(m, basis: hyper.basisSet) } }
        let added = Array(dictionary.names[before...])
        var metadata = [String: String]()
        if elementBaseline {
            metadata["element_baseline"] = try ElementBaseline.fit(dataset.train, outputs: dataset.outputs).json
        }
        metadata["init_from"] = sourceName
        metadata["init_from_sha256"] = sourceSHA256
        metadata["init_from_added_orbitals"] = added.isEmpty ? "none" : added.joined(separator: ",")
        if let name = source.metadata["model_name"] { metadata["init_from_model_name"] = name }
        var model = try QDFModel(hyper: hyper, dictionary: dictionary, metadata: metadata, seed: seed)
        let nt = before
        for e in model.layout.entries where !e.name.hasPrefix("W_property") {
            guard let s = source.layout[e.name] else {
                throw QDFError("the source model has no tensor \(e.name)")   // unreachable: same architecture
            }
            if orbitalTypeTensors.contains(e.name) {
                // The source's nt rows are the first nt rows of the extended dictionary.
                let row = e.shape.dropFirst().reduce(1, *)
                precondition(s.count == nt * row, "rows of \(e.name)")
                for i in 0..<(nt * row) { model.parameters[e.offset + i] = source.parameters[s.offset + i] }
            } else {
                precondition(s.shape == e.shape, "shape of \(e.name)")
                for i in 0..<e.count { model.parameters[e.offset + i] = source.parameters[s.offset + i] }
            }
        }
        model.metadata["init_head"] = head.rawValue
        var fit: ReadoutRefit.Result? = nil
        if head == .leastSquares && operation != .dipole {
            let r = try ReadoutRefit.fit(model: model, molecules: dataset.train, workers: 2)
            model.setReadout(weight: r.weight, bias: r.bias)
            fit = r
        }
        return Start(model: model, addedOrbitals: added, headFit: fit)
    }
}

extension FineTuning {
    /// What a frozen-orbital probe found (`probe`).
    public struct ProbeResult: Sendable {
        /// The probed model: the source with the least-squares head (and element baseline).
        public var model: QDFModel
        /// Orbital types the source lacked (their rows are a fresh model's, untrained).
        public var addedOrbitals: [String]
        /// MAE per output of the probe for train, val and test (NaN for an empty split).
        public var mae: [String: [Double]]
        /// MAE per output of the element-count baseline alone (a least-squares fit on the
        /// training molecules' element counts and a constant), for comparison.
        public var baselineMAE: [String: [Double]]
    }

    /// The frozen-orbital probe: everything of `source` kept but the head, which is fitted
    /// by least squares (docs/model.md §6, the readout refit) to `dataset`'s training
    /// molecules, on top of a per-element baseline when `elementBaseline`. Tells in seconds how
    /// much of a property the trained orbitals and functional already hold. `operation` is
    /// the readout for the property's kind; with `.dipole` nothing is fitted: the figures are
    /// those of |μ| computed from the source's density as it is (docs/model.md §20). The
    /// element-count baseline alone is reported beside it either way.
    public static func probe(source: QDFModel, sourceName: String, sourceSHA256: String, dataset: Dataset,
                             operation: Readout, elementBaseline: Bool, ridge: Double = 1e-7,
                             workers: Int = defaultWorkers) throws -> ProbeResult {
        let s = try start(from: source, sourceName: sourceName, sourceSHA256: sourceSHA256, dataset: dataset,
                          operation: operation, elementBaseline: elementBaseline, seed: 1729, head: .random)
        var model = s.model
        if operation == .dipole {
            model.metadata["probe"] = "the dipole readout: |μ| of the model's density as it is, nothing fitted"
        } else {
            let fit = try ReadoutRefit.fit(model: model, molecules: dataset.train, ridge: ridge, workers: workers)
            model.setReadout(weight: fit.weight, bias: fit.bias)
            model.metadata["probe"] = "least-squares head on \(fit.molecules) training molecules of \(dataset.name), everything else frozen"
        }
        var mae = [String: [Double]](), base = [String: [Double]]()
        let baseline = try ElementBaseline.fitWithConstant(dataset.train, outputs: dataset.outputs)
        for (name, ms) in [("train", dataset.train), ("val", dataset.val), ("test", dataset.test)] {
            var e = ErrorSums(outputs: dataset.outputs), b = ErrorSums(outputs: dataset.outputs)
            if !ms.isEmpty {
                for (m, p) in zip(ms, try Predictor(model: model, workers: workers).predict(ms)) {
                    e.add(predicted: p.predicted, correct: m.properties)
                    b.add(zip(baseline(m), m.properties).map { $0 - $1 })
                }
            }
            mae[name] = e.mae
            base[name] = b.mae
        }
        return ProbeResult(model: model, addedOrbitals: s.addedOrbitals, mae: mae, baselineMAE: base)
    }
}
