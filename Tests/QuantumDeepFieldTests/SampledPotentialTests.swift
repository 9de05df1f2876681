import Foundation
import Testing
import QuantumDeepField

/// The sampled V step (docs/model.md §7, "The sampled V step") against the plain one: its
/// finite-difference gradient is in GradientTests (`potentialSampled`); here, that fraction
/// 1 is the plain path bit for bit, that the points kept depend only on the step's key and
/// the molecule (not on the batch it sits in), and that the estimate is unbiased.
@Suite("Sampled V step")
struct SampledPotentialTests {
    static func lossAndGradient(_ engine: Engine, _ geoms: [MoleculeGeometry], _ model: QDFModel,
                                _ sample: PotentialSample?) -> (Double, [Float]) {
        var grad = [Float](repeating: 0, count: model.layout.totalCount)
        let loss = engine.potentialLossAndGradient(geoms, parameters: model.parameters, gradient: &grad, sample: sample)
        return (loss, grad)
    }

    @Test("Fraction 1 is the plain V step, bit for bit")
    func fractionOne() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let engine = Engine(model: model)
        let plain = Self.lossAndGradient(engine, geoms, model, nil)
        let all = Self.lossAndGradient(engine, geoms, model, PotentialSample(fraction: 1, key: 5))
        #expect(plain.0 == all.0 && plain.1 == all.1)
    }

    @Test("The points kept depend on the key and the molecule only: a batch's loss is its molecules' losses weighted by their grid points")
    func batchIndependence() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let engine = Engine(model: model)
        let sample = PotentialSample(fraction: 0.3, key: 77)
        let whole = Self.lossAndGradient(engine, geoms, model, sample).0
        let reversed = Self.lossAndGradient(engine, geoms.reversed(), model, sample).0
        let rows = Double(geoms.map(\.fieldCount).reduce(0, +))
        let parts = geoms.map { Self.lossAndGradient(engine, [$0], model, sample).0 * Double($0.fieldCount) / rows }
        #expect(abs(whole - parts.reduce(0, +)) <= 1e-5 * whole, "batch \(whole), by molecule \(parts.reduce(0, +))")
        #expect(abs(whole - reversed) <= 1e-6 * whole)
        // Another key keeps other points: the estimate moves.
        let other = Self.lossAndGradient(engine, geoms, model, PotentialSample(fraction: 0.3, key: 78)).0
        #expect(other != whole)
    }

    @Test("Kept share and unbiasedness: over 300 keys the kept share is the fraction and the mean loss and gradient are the full ones")
    func unbiased() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let engine = Engine(model: model)
        let (full, fullGrad) = Self.lossAndGradient(engine, geoms, model, nil)
        let keys = 300, fraction = 0.4
        var meanLoss = 0.0, meanGrad = [Double](repeating: 0, count: fullGrad.count), kept = 0, rows = 0
        var lowest = Double.infinity, highest = 0.0
        for k in 0..<keys {
            let sample = PotentialSample(fraction: fraction, key: UInt64(1000 + k))
            let (loss, grad) = Self.lossAndGradient(engine, geoms, model, sample)
            meanLoss += loss / Double(keys)
            lowest = min(lowest, loss); highest = max(highest, loss)
            for i in grad.indices { meanGrad[i] += Double(grad[i]) / Double(keys) }
            for g in geoms {
                let key = sample.moleculeKey(g.id)
                kept += (0..<g.fieldCount).filter { sample.keeps(row: $0, moleculeKey: key) }.count
                rows += g.fieldCount
            }
        }
        // Binomial: 300 keys × ~600 rows; 5 standard deviations of the kept share ≈ 0.006.
        let share = Double(kept) / Double(rows)
        #expect(abs(share - fraction) < 0.006, "kept share \(share)")
        // Each key's estimate scatters (the spread shows the test measures something) and
        // their mean is the full loss (the standard error of the mean is ≈ 1 % here).
        #expect(highest - lowest > 0.05 * full, "estimates \(lowest)…\(highest), full \(full)")
        #expect(abs(meanLoss - full) < 0.03 * full, "mean estimate \(meanLoss), full \(full)")
        var diff = 0.0, norm = 0.0
        for i in fullGrad.indices { diff += pow(meanGrad[i] - Double(fullGrad[i]), 2); norm += pow(Double(fullGrad[i]), 2) }
        #expect((diff / norm).squareRoot() < 0.1, "mean gradient off by \((diff / norm).squareRoot()) of its norm")
    }
}
