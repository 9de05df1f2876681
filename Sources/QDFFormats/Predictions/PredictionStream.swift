import Foundation
import QuantumDeepField

// Streams molecules from readers through a `Predictor` and hands over one record per
// molecule, in input order, with its source file and line. With `rotations` K > 1 each
// molecule is predicted in the K orientations of `MoleculeRotations.fixed(K)` and the
// record carries their mean and standard deviation (sample, K − 1 in the denominator).
// Molecules are predicted in chunks (molecule-parallel inside the predictor); an
// interactive stream (standard input) is predicted molecule by molecule, so a process
// writing one molecule and waiting for its answer gets it at once.

/// Totals of a `PredictionStream.run`.
public struct PredictionTotals: Sendable {
    /// Molecules predicted.
    public var molecules = 0
    /// Molecules with property values (the denominator of `mae`).
    public var withValues = 0
    /// Σ |E − Ê| per output over molecules with values (Ê the mean over orientations).
    public var absoluteErrorSum: [Double] = []
    /// Wall-clock seconds, reading included.
    public var seconds = 0.0
    /// Mean absolute error per output, or nil if no molecule had values.
    public var mae: [Double]? { withValues > 0 ? absoluteErrorSum.map { $0 / Double(withValues) } : nil }
}

/// Predicts every molecule of a list of readers, in order.
public final class PredictionStream {
    private let predictor: Predictor
    private let rotations: [Rotation]
    /// Predict each molecule as soon as it is read (for standard input).
    public var interactive = false

    /// - Parameter rotations: K ≥ 1 orientations per molecule (1: as given).
    public init(predictor: Predictor, rotations: Int = 1) {
        self.predictor = predictor
        self.rotations = MoleculeRotations.fixed(max(1, rotations))
    }

    /// Reads, predicts and hands each record to `handle`. Throws `QDFError` with the file
    /// and line for a property count ≠ the model's outputs, with the file for an empty
    /// input; reader, predictor and `handle` errors pass through.
    public func run(readers: [MoleculeReader], handle: (PredictionRecord) throws -> Void) throws -> PredictionTotals {
        let P = predictor.model.hyper.outputs
        var totals = PredictionTotals()
        totals.absoluteErrorSum = [Double](repeating: 0, count: P)
        let start = Date()
        let K = rotations.count
        // Every rank of a group must cut the input into the same chunks: size them by all ranks' workers.
        let workers = predictor.group?.workersPerRank.reduce(0, +) ?? max(1, predictor.workers)
        let chunk = interactive ? 1 : max(1, predictor.batchSize * workers * 4 / K)
        var pending = [(Molecule, String, Int)]()
        func flush() throws {
            guard !pending.isEmpty else { return }
            var copies = [Molecule]()
            copies.reserveCapacity(pending.count * K)
            for (m, _, _) in pending {
                for r in rotations { copies.append(K == 1 ? m : m.rotated(by: r)) }
            }
            let predictions: [[Float]]
            if let g = predictor.group {
                // Sharded: each rank predicts its share; rank 0 alone gets the values and handles them.
                predictions = try predictor.shardedValues(copies, group: g)
                if g.rank != 0 { pending.removeAll(keepingCapacity: true); return }
            } else {
                predictions = try predictor.predict(copies).map(\.predicted)
            }
            for (k, (m, source, line)) in pending.enumerated() {
                let ps = predictions[(k * K)..<((k + 1) * K)]
                var mean = [Float](repeating: 0, count: P), spread = [Float]()
                for q in 0..<P {
                    let xs = ps.map { Double($0[q]) }
                    let mu = xs.reduce(0, +) / Double(K)
                    mean[q] = Float(mu)
                    if K > 1 {
                        let v = xs.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(K - 1)
                        spread.append(Float(v.squareRoot()))
                    }
                }
                if m.properties.count == P {
                    totals.withValues += 1
                    for q in 0..<P { totals.absoluteErrorSum[q] += abs(Double(mean[q]) - m.properties[q]) }
                }
                totals.molecules += 1
                try handle(PredictionRecord(id: m.id, source: source, line: line, atomCount: m.atomCount,
                                            predicted: mean, correct: m.properties, spread: spread))
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
                pending.append((m, reader.path, reader.moleculeLine))
                if pending.count >= chunk { try flush() }
            }
            if read == 0, (reader as? CheckedMoleculeReader)?.skipped.isEmpty ?? true {
                throw QDFError("no molecules in the file", file: reader.path)
            }
        }
        try flush()
        totals.seconds = Date().timeIntervalSince(start)
        return totals
    }
}
