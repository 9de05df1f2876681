import Foundation

// Prediction over streams of molecules: reads, predicts and hands over results in
// batches, so memory does not grow with the number of molecules.

public struct Prediction: Sendable {
    public var id: String
    public var atomCount: Int
    public var predicted: [Float]
    /// The input's property values, when it has them.
    public var correct: [Double]
}

public struct PredictionSummary: Sendable {
    public var molecules = 0
    public var skipped: [(id: String, reason: String)] = []
    /// Σ |E − Ê| per output, over molecules with known values.
    public var absoluteErrorSum: [Double] = []
    public var squaredErrorSum: [Double] = []
    public var withValues = 0
    public var seconds = 0.0

    public var mae: [Double]? { withValues > 0 ? absoluteErrorSum.map { $0 / Double(withValues) } : nil }
    public var rmse: [Double]? { withValues > 0 ? squaredErrorSum.map { ($0 / Double(withValues)).squareRoot() } : nil }
}

public final class Predictor {
    public let model: QDFModel
    public let engine: Engine
    public var batchSize: Int
    /// Molecule-parallel workers: each runs its own engine on its share of a chunk with
    /// single-threaded BLAS, so the scalar work (geometry, basis functions) is parallel too.
    /// 1 runs one engine with multi-threaded BLAS instead.
    public var workers: Int
    private var engines: [Engine]

    public init(model: QDFModel, batchSize: Int = 32,
                workers: Int = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))) {
        self.model = model
        self.engine = Engine(model: model)
        self.batchSize = batchSize
        self.workers = max(1, workers)
        engines = [engine]
    }

    /// Molecules whose whole-molecule working set exceeds this many Float values (64M =
    /// 256 MB; ~300 atoms) are predicted in chunks by `LargeMolecule`, in bounded memory.
    public var largeMoleculeValues = 64 << 20

    /// Predicted values for molecules in memory, in order; unknown elements throw.
    func values(_ molecules: ArraySlice<Molecule>) throws -> [[Float]] {
        if molecules.contains(where: { LargeMolecule.regularValues($0, model: model) > largeMoleculeValues }) {
            var out = [[Float]](), regular = [Molecule](), slots = [Int]()
            for m in molecules {
                if LargeMolecule.regularValues(m, model: model) > largeMoleculeValues {
                    out.append(try LargeMolecule.predict(m, model: model))
                } else {
                    slots.append(out.count); out.append([]); regular.append(m)
                }
            }
            for (slot, v) in zip(slots, try values(regular[...])) { out[slot] = v }
            return out
        }
        let n = workers <= 1 || molecules.count < 2 * workers ? 1 : workers
        while engines.count < n { engines.append(Engine(model: model)) }
        let theModel = self.model, mols = Array(molecules)
        return try Engine.predictInShares(engines: Array(engines.prefix(n)), count: mols.count, batchSize: batchSize) { r in
            try mols[r].map { try theModel.geometry($0) }
        }
    }

    /// Predicts molecules held in memory (unknown elements throw).
    public func predict(_ molecules: [Molecule]) throws -> [Prediction] {
        let v = try values(molecules[...])
        return zip(molecules, v).map { m, v in
            Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties)
        }
    }

    /// Streams every molecule of the readers through the model. Molecules with elements
    /// the model never learned throw, or are skipped and listed when `skipUnknown`.
    public func run(readers: [MoleculeReader], skipUnknown: Bool,
                    handle: (Prediction) throws -> Void) throws -> PredictionSummary {
        var summary = PredictionSummary()
        let P = model.hyper.outputs
        summary.absoluteErrorSum = [Double](repeating: 0, count: P)
        summary.squaredErrorSum = [Double](repeating: 0, count: P)
        let start = Date()
        var pending = [Molecule]()
        let chunkSize = batchSize * max(1, workers) * 4
        func flush() throws {
            guard !pending.isEmpty else { return }
            let values = try self.values(pending[...])
            for (m, v) in zip(pending, values) {
                let p = Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties)
                if m.properties.count == P {
                    summary.withValues += 1
                    for q in 0..<P {
                        let e = Double(v[q]) - m.properties[q]
                        summary.absoluteErrorSum[q] += abs(e)
                        summary.squaredErrorSum[q] += e * e
                    }
                }
                summary.molecules += 1
                try handle(p)
            }
            pending.removeAll(keepingCapacity: true)
        }
        for reader in readers {
            var read = 0
            while let m = try reader.next() {
                read += 1
                if !m.properties.isEmpty && m.properties.count != P {
                    throw QDFError("molecule '\(m.id)' has \(m.properties.count) property values; the model predicts \(P)",
                                   file: reader.path, line: reader.moleculeLine)
                }
                if let message = model.dictionary.refusal(m, basis: model.basis) {
                    if skipUnknown { summary.skipped.append((m.id, message)); continue }
                    throw QDFError(message, file: reader.path, line: reader.moleculeLine)
                }
                pending.append(m)
                if pending.count == chunkSize { try flush() }
            }
            if read == 0 { throw QDFError("no molecules in the file", file: reader.path) }
        }
        try flush()
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }
}

/// Column names of a predictions TSV: ID, then Correct…, Predict…, Error… (the
/// reference's order); suffixed with the property index when there are several.
public func predictionColumns(outputs: Int, withCorrect: Bool) -> [String] {
    func names(_ base: String) -> [String] { outputs == 1 ? [base] : (0..<outputs).map { "\(base)_\($0)" } }
    return ["ID"] + (withCorrect ? names("Correct") : []) + names("Predict") + (withCorrect ? names("Error") : [])
}

/// One TSV row for a prediction (Error = |Correct − Predict|).
public func predictionRow(_ p: Prediction, withCorrect: Bool) -> String {
    var fields = [p.id]
    if withCorrect { fields += p.correct.map { "\($0)" } }
    fields += p.predicted.map { "\(Double($0))" }
    if withCorrect { fields += zip(p.correct, p.predicted).map { "\(abs($0 - Double($1)))" } }
    return fields.joined(separator: "\t")
}
