import Foundation

// Refitting the property readout (W_property, b_property) by least squares.
//
// Ê_m = W_p s_m + b_p is linear in the readout's parameters, given the features s_m the
// trained energy functional computes (docs/model.md §6). Adam leaves W_p and b_p wherever
// the last mini-batches pushed them, which shows as an epoch-to-epoch offset in the
// predictions; the least-squares W_p, b_p over the training molecules is the best linear
// readout of the same features. Everything else (orbitals, functional layers, HK map,
// density) is unchanged.
//
// Normal equations in Float64: (XᵀX + λ·diag(XᵀX)) w = Xᵀy with x_m = (s_m, 1), solved
// by Cholesky; one right-hand side per output.

/// The least-squares readout refit of docs/model.md §6 (`qdf refit-readout`).
public enum ReadoutRefit {
    /// The refitted readout and its effect on the fitting molecules.
    public struct Result: Sendable {
        /// The new W_property (P × dim, row-major) and b_property (P).
        public var weight: [Float]
        /// The new b_property (P values, property unit).
        public var bias: [Float]
        /// Training-set MAE per output with the old and the new readout.
        public var maeBefore: [Double]
        /// MAE per output with the new readout (property unit, e.g. eV).
        public var maeAfter: [Double]
        /// The number of molecules fitted on.
        public var molecules: Int
    }

    /// Fits the readout on `molecules` (their property values are the targets). `ridge`
    /// is relative to the diagonal of XᵀX (it only guards against collinear features).
    /// `model` is not changed; apply the result with `QDFModel.setReadout`. Throws `QDFError`
    /// (no file/line) if there are no molecules, one has ≠ P values or unknown elements, or
    /// the normal equations are not positive definite.
    public static func fit(model: QDFModel, molecules: [Molecule], ridge: Double = 1e-7,
                           workers: Int = defaultWorkers,
                           batchSize: Int = 16) throws -> Result {
        let d = model.hyper.dim, P = model.hyper.outputs, n = d + 1
        guard model.hyper.operation != .dipole else {
            throw QDFError("the model has the dipole readout (§20): its output is computed from the density, with no learned head to fit")
        }
        guard !molecules.isEmpty else { throw QDFError("no molecules to fit the readout on") }
        guard batchSize > 0 else { throw QDFError("the batch size must be positive") }
        for m in molecules where m.properties.count != P {
            throw QDFError("molecule '\(m.id)' has \(m.properties.count) property values; the model has \(P) outputs")
        }
        // Per-worker accumulators: XᵀX (n × n, upper triangle), Xᵀy (n × P), the old readout's errors.
        struct Acc: Sendable { var xtx: [Double]; var xty: [Double]; var before: ErrorSums }
        let shares = max(1, min(workers, molecules.count))
        let architecture = model.architecture, parameters = model.parameters
        let accs = try concurrentMap(shares) { w -> Acc in
            var acc = Acc(xtx: [Double](repeating: 0, count: n * n), xty: [Double](repeating: 0, count: n * P),
                          before: ErrorSums(outputs: P))
            let engine = Engine(architecture: architecture)
            var x = [Double](repeating: 1, count: n)
            let share = ShareLayout.molecules(ofShare: w, count: molecules.count, shares: shares)
            var i = share.lowerBound
            let end = share.upperBound
            while i < end {
                let j = min(end, i + batchSize)
                let geoms = try molecules[i..<j].map { try architecture.geometry($0) }
                let (out, features) = engine.predictWithReadout(geoms, parameters: parameters)
                for (k, mol) in molecules[i..<j].enumerated() {
                    for a in 0..<d { x[a] = Double(features[k][a]) }
                    // The readout fits what the element baseline (if any) leaves.
                    let offset = geoms[k].outputOffset
                    for a in 0..<n {
                        let xa = x[a]
                        for b in a..<n { acc.xtx[a * n + b] += xa * x[b] }
                        for q in 0..<P {
                            acc.xty[a * P + q] += xa * (mol.properties[q] - (offset.isEmpty ? 0 : Double(offset[q])))
                        }
                    }
                    acc.before.add(predicted: out[k], correct: mol.properties)
                }
                i = j
            }
            return acc
        }
        var xtx = [Double](repeating: 0, count: n * n), xty = [Double](repeating: 0, count: n * P)
        var before = ErrorSums(outputs: P)
        for a in accs {
            for k in 0..<(n * n) { xtx[k] += a.xtx[k] }
            for k in 0..<(n * P) { xty[k] += a.xty[k] }
            before.add(a.before)
        }
        for a in 0..<n { for b in 0..<a { xtx[a * n + b] = xtx[b * n + a] } }
        // Ridge relative to the diagonal; a feature that is zero on every molecule (a dead
        // ReLU unit) gets weight 0.
        for a in 0..<n {
            let diag = xtx[a * n + a]
            xtx[a * n + a] = diag > 0 ? diag * (1 + ridge) : 1
        }
        let solution = try choleskySolve(xtx, n: n, rhs: xty, columns: P)
        var weight = [Float](repeating: 0, count: P * d), bias = [Float](repeating: 0, count: P)
        for q in 0..<P {
            for a in 0..<d { weight[q * d + a] = Float(solution[a * P + q]) }
            bias[q] = Float(solution[d * P + q])
        }
        // The new readout's training error, from the same features: recompute (cheap
        // next to the forward passes, and independent of the normal equations).
        var refitted = model
        refitted.setReadout(weight: weight, bias: bias)
        let after = try Predictor(model: refitted, workers: workers).predict(molecules)
        var errors = ErrorSums(outputs: P)
        for (m, p) in zip(molecules, after) { errors.add(predicted: p.predicted, correct: m.properties) }
        // Every molecule has P values (checked above), so the sums are over all of them.
        return Result(weight: weight, bias: bias, maeBefore: before.mae, maeAfter: errors.mae, molecules: molecules.count)
    }

    /// Solves A X = B for symmetric positive definite A (n × n, row-major) and B (n × k).
    static func choleskySolve(_ a: [Double], n: Int, rhs: [Double], columns k: Int) throws -> [Double] {
        var l = a
        for j in 0..<n {
            var sum = l[j * n + j]
            for p in 0..<j { sum -= l[j * n + p] * l[j * n + p] }
            guard sum > 0, sum.isFinite else {
                throw QDFError("the readout's normal equations are not positive definite (feature \(j)); try a larger ridge")
            }
            let ljj = sum.squareRoot()
            l[j * n + j] = ljj
            for i in (j + 1)..<max(n, j + 1) {
                var s = l[i * n + j]
                for p in 0..<j { s -= l[i * n + p] * l[j * n + p] }
                l[i * n + j] = s / ljj
            }
        }
        var x = rhs
        for c in 0..<k {
            for i in 0..<n {  // L y = b
                var s = x[i * k + c]
                for p in 0..<i { s -= l[i * n + p] * x[p * k + c] }
                x[i * k + c] = s / l[i * n + i]
            }
            for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = y
                var s = x[i * k + c]
                for p in (i + 1)..<max(n, i + 1) { s -= l[p * n + i] * x[p * k + c] }
                x[i * k + c] = s / l[i * n + i]
            }
        }
        return x
    }
}
