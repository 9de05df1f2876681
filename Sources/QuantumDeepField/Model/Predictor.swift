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

    public init(model: QDFModel, batchSize: Int = 32) {
        self.model = model
        self.engine = Engine(model: model)
        self.batchSize = batchSize
    }

    /// Predicts molecules held in memory (unknown elements throw).
    public func predict(_ molecules: [Molecule]) throws -> [Prediction] {
        var out = [Prediction]()
        var i = 0
        while i < molecules.count {
            let chunk = Array(molecules[i..<min(i + batchSize, molecules.count)])
            let geoms = try chunk.map { try model.geometry($0) }
            let values = engine.predict(geoms)
            for (m, v) in zip(chunk, values) {
                out.append(Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties))
            }
            i += batchSize
        }
        return out
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
        var pending = [Molecule](), geoms = [MoleculeGeometry]()
        func flush() throws {
            guard !geoms.isEmpty else { return }
            let values = engine.predict(geoms)
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
            geoms.removeAll(keepingCapacity: true)
        }
        for reader in readers {
            var read = 0
            while let m = try reader.next() {
                read += 1
                if !m.properties.isEmpty && m.properties.count != P {
                    throw QDFError("molecule '\(m.id)' has \(m.properties.count) property values; the model predicts \(P)",
                                   file: reader.path, line: reader.moleculeLine)
                }
                do {
                    geoms.append(try model.geometry(m))
                    pending.append(m)
                } catch let e as QDFError {
                    if !skipUnknown { throw QDFError(e.message, file: reader.path, line: reader.moleculeLine) }
                    summary.skipped.append((m.id, e.message))
                    continue
                }
                if geoms.count == batchSize { try flush() }
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
