import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// The least-squares readout refit (`qdf refit-readout`).
@Suite("Readout refit")
struct ReadoutRefitTests {
    /// 30 random molecules (2–7 heavy atoms with hydrogens).
    static func molecules() -> [Molecule] {
        var rng = RandomGenerator(seed: 21)
        return (0..<30).map { n in
            var zs = [Int](), ps = [SIMD3<Double>]()
            let heavy = 2 + n % 6
            for a in 0..<heavy {
                zs.append([6, 6, 7, 8, 6][(a + n) % 5])
                ps.append(SIMD3(1.45 * Double(a), 0.4 * rng.nextUniform(-1, 1), 0.4 * rng.nextUniform(-1, 1)))
            }
            for a in 0..<(heavy + 1) {
                zs.append(1)
                ps.append(ps[a % heavy] + SIMD3(0.3 * rng.nextUniform(-1, 1), 1.09 * (a % 2 == 0 ? 1 : -1), 0.5 * rng.nextUniform(-1, 1)))
            }
            return Molecule(id: "r\(n)", atomicNumbers: zs, positions: ps, properties: [0, 0])
        }
    }

    static func model(seed: UInt64, molecules: [Molecule]) throws -> QDFModel {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in molecules { dict.add(m, basis: basis) }
        return try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 12, layerFunctional: 2, hiddenHK: 8, layerHK: 1,
                                                   outputs: 2), dictionary: dict, seed: seed)
    }

    @Test("Targets a readout can reach exactly: the refit recovers them from a perturbed readout")
    func recoversAnExactReadout() throws {
        var mols = Self.molecules()
        let truth = try Self.model(seed: 3, molecules: mols)
        let target = try Predictor(model: truth).predict(mols)
        for k in mols.indices { mols[k].properties = target[k].predicted.map(Double.init) }
        // Same features, another readout: W_property and its bias scrambled.
        var start = truth
        var rng = RandomGenerator(seed: 9)
        let d = truth.hyper.dim
        start.setReadout(weight: (0..<(2 * d)).map { _ in Float(rng.nextUniform(-1, 1)) }, bias: [3, -2])
        let r = try ReadoutRefit.fit(model: start, molecules: mols, ridge: 0)
        #expect(r.maeBefore.allSatisfy { $0 > 0.05 }, "the scrambled readout must be wrong to begin with: \(r.maeBefore)")
        let scale = mols.flatMap(\.properties).map(abs).max()!
        #expect(r.maeAfter.allSatisfy { $0 < 1e-4 * max(1, scale) }, "MAE after the refit \(r.maeAfter)")
        #expect(r.molecules == mols.count)
    }

    @Test("Noisy targets: the refit lowers the training error, and its MAE is the refitted model's")
    func lowersTheTrainingError() throws {
        var mols = Self.molecules()
        let m = try Self.model(seed: 4, molecules: mols)
        var rng = RandomGenerator(seed: 13)
        for k in mols.indices {
            let n = Double(mols[k].atomCount)
            mols[k].properties = [-4.4 * n + rng.nextUniform(-0.5, 0.5), 0.1 * n + rng.nextUniform(-0.2, 0.2)]
        }
        let r = try ReadoutRefit.fit(model: m, molecules: mols)
        for q in 0..<2 { #expect(r.maeAfter[q] < r.maeBefore[q], "output \(q): \(r.maeBefore[q]) -> \(r.maeAfter[q])") }
        var refitted = m
        refitted.setReadout(weight: r.weight, bias: r.bias)
        let p = try Predictor(model: refitted).predict(mols)
        let mae0 = zip(mols, p).map { abs(Double($1.predicted[0]) - $0.properties[0]) }.reduce(0, +) / Double(mols.count)
        #expect(abs(mae0 - r.maeAfter[0]) < 1e-9)
        // Only the readout changed.
        let changed = m.layout.entries.filter { e in m.tensor(e.name) != refitted.tensor(e.name) }.map(\.name)
        #expect(Set(changed).isSubset(of: ["W_property.weight", "W_property.bias"]))
    }

    @Test("A property count that does not match the model's outputs is refused, naming the molecule")
    func wrongPropertyCount() throws {
        var mols = Self.molecules()
        let m = try Self.model(seed: 4, molecules: mols)
        mols[7].properties = [1]
        #expect(throws: QDFError("molecule 'r7' has 1 property values; the model has 2 outputs")) {
            _ = try ReadoutRefit.fit(model: m, molecules: mols)
        }
    }
}
