import Foundation
import Testing
import QuantumDeepField
import QDFFormats

/// The potential input (docs/model.md §19): a new model starts as the reference, the
/// prediction keeps the reference's invariances, the model file keeps it, and the chunked
/// large-molecule path agrees with the engine with both structure options on. Its gradient
/// is checked by finite differences in GradientTests.
@Suite("Potential input")
struct PotentialInputTests {
    static let molecule = OrbitalEnvironmentTests.molecule

    static func model(potentialFeatures: Int, environment: EnvironmentShape? = nil, frame: FrameKind = .input,
                      random: Bool = true) throws -> QDFModel {
        var dict = OrbitalDictionary()
        let basis = try BasisSet("6-31G")
        dict.add(molecule, basis: basis)
        let h = Hyperparameters(basisSet: basis, dim: 16, layerFunctional: 2, hiddenHK: 8, layerHK: 1, frame: frame,
                                environment: environment, potentialFeatures: potentialFeatures)
        var m = try QDFModel(hyper: h, dictionary: dict, seed: 21)
        if random {
            var rng = RandomGenerator(seed: 4)
            for name in ["W_functional_potential.weight", "environment.output.weight"] {
                guard let e = m.layout[name] else { continue }
                for i in e.range { m.parameters[i] = Float(rng.nextUniform(-1, 1)) }
            }
        }
        return m
    }

    static func predict(_ model: QDFModel, _ m: Molecule) throws -> Double {
        Double(try Predictor(model: model).predict([m])[0].predicted[0])
    }

    @Test("A new model with the potential input predicts exactly as the reference model of the same seed")
    func startsAsReference() throws {
        let with = try Self.model(potentialFeatures: 8, random: false)
        let without = try Self.model(potentialFeatures: 0)
        #expect(Array(with.parameters[0..<without.layout.totalCount]) == without.parameters)
        #expect(try Self.predict(with, Self.molecule) == (try Self.predict(without, Self.molecule)))
        let trained = try Self.model(potentialFeatures: 8)
        #expect(abs(try Self.predict(trained, Self.molecule) - (try Self.predict(without, Self.molecule))) > 1e-3)
    }

    @Test("Predictions do not depend on the atoms' order; in the canonical frame not on the orientation either")
    func invariance() throws {
        let input = try Self.model(potentialFeatures: 8)
        let canonical = try Self.model(potentialFeatures: 8, environment: OrbitalEnvironmentTests.shape, frame: .canonical)
        let permuted = OrbitalEnvironmentTests.permuted(Self.molecule, OrbitalEnvironmentTests.order)
        let turned = OrbitalEnvironmentTests.transformed(permuted) { MoleculeRotations.fixed(4)[3].apply($0) + SIMD3(2, -1, 0.5) }
        let a = try Self.predict(input, Self.molecule)
        #expect(abs(try Self.predict(input, permuted) - a) <= 1e-5 * abs(a))
        let c = try Self.predict(canonical, Self.molecule)
        #expect(abs(try Self.predict(canonical, turned) - c) <= 1e-5 * abs(c))
    }

    @Test("The model file keeps the potential input; geometries carry V for prediction")
    func modelFile() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.model(potentialFeatures: 6, environment: OrbitalEnvironmentTests.shape)
        try model.save(path: dir.file("m.safetensors"))
        let back = try QDFModel.load(path: dir.file("m.safetensors"))
        #expect(back.hyper.potentialFeatures == 6 && back.hyper == model.hyper && back.parameters == model.parameters)
        let g = try back.geometry(Self.molecule)
        #expect(g.potential.count == g.fieldCount)
        #expect(try Self.predict(back, Self.molecule) == (try Self.predict(model, Self.molecule)))
    }

    @Test("The chunked large-molecule path gives the engine's prediction with the environment and the potential input")
    func largeMoleculePath() throws {
        let model = try Self.model(potentialFeatures: 6, environment: OrbitalEnvironmentTests.shape)
        let engine = Engine(model: model)
        let whole = Double(engine.predict([try model.geometry(Self.molecule)], parameters: model.parameters)[0][0])
        let chunked = Double(try LargeMolecule.predict(Self.molecule, model: model, chunkRows: 37)[0])
        #expect(abs(chunked - whole) <= 1e-4 * max(abs(whole), 1), "chunked \(chunked), engine \(whole)")
    }

    @Test("Refused: one Gaussian, or the potential input without a functional layer")
    func refused() throws {
        var dict = OrbitalDictionary()
        dict.add(Self.molecule, basis: try BasisSet("6-31G"))
        #expect(throws: QDFError.self) { try QDFModel(hyper: Hyperparameters(potentialFeatures: 1), dictionary: dict) }
        #expect(throws: QDFError.self) {
            try QDFModel(hyper: Hyperparameters(layerFunctional: 0, potentialFeatures: 4), dictionary: dict)
        }
    }
}
