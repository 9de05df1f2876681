import Foundation
import Testing
import QuantumDeepField
import QDFFormats

/// The orbital environment (docs/model.md §18): its term of the coefficient rows depends on
/// interatomic distances alone, a new model starts as the reference, the model file keeps
/// it, and training through it resumes bit for bit. Its gradients are checked by finite
/// differences in GradientTests.
@Suite("Orbital environment")
struct OrbitalEnvironmentTests {
    /// Glycine-like: four elements, no symmetry, two H on C and two on N in different
    /// surroundings; N–O is farther than the 3 Å cutoff below.
    static let molecule = Molecule(
        id: "gly", atomicNumbers: [7, 6, 6, 8, 8, 1, 1, 1, 1, 1],
        positions: [SIMD3(-1.93, 0.31, 0.02), SIMD3(-0.62, 0.93, -0.07), SIMD3(0.55, -0.02, 0.04),
                    SIMD3(0.42, -1.23, 0.17), SIMD3(1.76, 0.58, -0.01), SIMD3(-2.05, -0.27, 0.84),
                    SIMD3(-2.11, -0.25, -0.80), SIMD3(-0.52, 1.62, 0.77), SIMD3(-0.55, 1.49, -1.01),
                    SIMD3(2.44, -0.11, 0.07)],
        properties: [-40])
    static let shape = EnvironmentShape(layers: 2, features: 8, gaussians: 10, cutoff: 3)

    static func model(environment: EnvironmentShape?, frame: FrameKind = .input, randomOutput: Bool = true) throws -> QDFModel {
        var dict = OrbitalDictionary()
        let basis = try BasisSet("6-31G")
        dict.add(molecule, basis: basis)
        let h = Hyperparameters(basisSet: basis, dim: 16, layerFunctional: 2, hiddenHK: 8, layerHK: 1, frame: frame,
                                environment: environment)
        var m = try QDFModel(hyper: h, dictionary: dict, seed: 21)
        if randomOutput, environment != nil {
            var rng = RandomGenerator(seed: 8)
            for i in m.layout["environment.output.weight"]!.range { m.parameters[i] = Float(rng.nextUniform(-1, 1)) }
        }
        return m
    }

    /// The environment's term (N_o × dim) of `m` under `model`.
    static func term(_ m: Molecule, _ model: QDFModel) throws -> [Float] {
        let g = try model.geometry(m)
        var c = [Float](repeating: 0, count: g.orbitalCount * model.hyper.dim)
        model.parameters.withUnsafeBufferPointer { p in
        g.atomDistances.withUnsafeBufferPointer { d in
        c.withUnsafeMutableBufferPointer { cp in
            OrbitalEnvironment.addForward(layout: g.basis, atomCount: g.atomCount, atomDistances: d.baseAddress!,
                                          parameters: p.baseAddress!, offsets: model.offsets.environment!,
                                          dim: model.hyper.dim, into: cp.baseAddress!, compute: defaultCompute,
                                          scratch: ScratchArena())
        }}}
        return c
    }

    /// Rows of the term per atom (each atom's basis functions in order).
    static func rowsByAtom(_ m: Molecule, _ model: QDFModel) throws -> [[Float]] {
        let g = try model.geometry(m), t = try term(m, model), dim = model.hyper.dim
        var out = [[Float]](repeating: [], count: m.atomCount)
        for k in 0..<g.orbitalCount { out[Int(g.orbitalAtom[k])] += t[(k * dim)..<((k + 1) * dim)] }
        return out
    }

    static func transformed(_ m: Molecule, _ f: (SIMD3<Double>) -> SIMD3<Double>) -> Molecule {
        Molecule(id: m.id, atomicNumbers: m.atomicNumbers, positions: m.positions.map(f), properties: m.properties)
    }

    static func permuted(_ m: Molecule, _ order: [Int]) -> Molecule {
        Molecule(id: m.id, atomicNumbers: order.map { m.atomicNumbers[$0] }, positions: order.map { m.positions[$0] },
                 properties: m.properties)
    }

    static let order = [4, 9, 0, 7, 2, 5, 1, 8, 3, 6]

    @Test("The term is invariant under rotations, reflections and translations, follows the atoms' order, and differs between atoms of one element")
    func invariance() throws {
        let model = try Self.model(environment: Self.shape)
        let base = try Self.rowsByAtom(Self.molecule, model)
        let scale = base.flatMap { $0 }.map { abs($0) }.max()!
        #expect(scale > 0.1)
        for (n, r) in MoleculeRotations.fixed(5).dropFirst().enumerated() {
            let shift = SIMD3(1.5, -2.0, 0.7) * Double(n)
            let reflect = n % 2 == 1
            let moved = Self.transformed(Self.molecule) { p in
                let q = r.apply(p) + shift
                return reflect ? SIMD3(-q.x, q.y, q.z) : q
            }
            let rows = try Self.rowsByAtom(moved, model)
            let diff = zip(rows.flatMap { $0 }, base.flatMap { $0 }).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-5 * scale, "transform \(n): largest change \(diff) of \(scale)")
        }
        let rows = try Self.rowsByAtom(Self.permuted(Self.molecule, Self.order), model)
        for (i, a) in Self.order.enumerated() {
            let diff = zip(rows[i], base[a]).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-5 * scale, "atom \(a) at place \(i): largest change \(diff)")
        }
        // The two H on C (atoms 7, 8) sit alike; an H on N (atom 5) does not.
        let near = zip(base[7], base[8]).map { abs($0 - $1) }.max()!
        let far = zip(base[7], base[5]).map { abs($0 - $1) }.max()!
        #expect(far > 0.01 * scale && far > 10 * near, "H on C vs H on N: \(far); the two H on C: \(near)")
    }

    @Test("A new model with the environment predicts exactly as the reference model of the same seed")
    func startsAsReference() throws {
        let with = try Self.model(environment: Self.shape, randomOutput: false)
        let without = try Self.model(environment: nil)
        #expect(with.layout.totalCount > without.layout.totalCount)
        #expect(Array(with.parameters[0..<without.layout.totalCount]) == without.parameters)
        let a = try Predictor(model: with).predict([Self.molecule]), b = try Predictor(model: without).predict([Self.molecule])
        #expect(a[0].predicted == b[0].predicted)
    }

    @Test("Predictions do not depend on the atoms' order; in the canonical frame not on the orientation either")
    func predictionInvariance() throws {
        let input = try Self.model(environment: Self.shape)
        let canonical = try Self.model(environment: Self.shape, frame: .canonical)
        let reference = try Self.model(environment: nil)
        let permuted = Self.permuted(Self.molecule, Self.order)
        let turned = Self.transformed(permuted) { MoleculeRotations.fixed(3)[2].apply($0) + SIMD3(0.3, 0.2, -4) }
        func e(_ model: QDFModel, _ m: Molecule) throws -> Double {
            Double(try Predictor(model: model).predict([m])[0].predicted[0])
        }
        let base = try e(input, Self.molecule)
        #expect(abs(try e(input, permuted) - base) <= 1e-5 * abs(base))
        let c = try e(canonical, Self.molecule)
        #expect(abs(try e(canonical, turned) - c) <= 1e-5 * abs(c))
        // The environment changes the prediction (it is not a no-op).
        #expect(abs(base - (try e(reference, Self.molecule))) > 1e-3 * abs(base))
    }

    @Test("The model file keeps the environment; a file without its cutoff is refused")
    func modelFile() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.model(environment: Self.shape, frame: .canonical)
        try model.save(path: dir.file("m.safetensors"))
        let back = try QDFModel.load(path: dir.file("m.safetensors"))
        #expect(back.hyper == model.hyper && back.parameters == model.parameters)
        #expect(back.metadata["environment_cutoff"] == nil)
        #expect(try Predictor(model: back).predict([Self.molecule])[0].predicted
                == (try Predictor(model: model).predict([Self.molecule])[0].predicted))
        var file = try SafetensorsFile.read(path: dir.file("m.safetensors"))
        file.metadata["environment_cutoff"] = nil
        do {
            _ = try QDFModel(file: file)
            Issue.record("a model without environment_cutoff was accepted")
        } catch let e as QDFError {
            #expect(e.message.contains("environment_cutoff"))
        }
        file.metadata["environment_cutoff"] = "3.0"
        file.metadata["environment_layers"] = "3"
        #expect(throws: QDFError.self) { try QDFModel(file: file) }
    }

    @Test("Training through the environment resumes bit for bit after an interruption mid-epoch")
    func resume() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        var opts = try TrainingTests.smallOptions(epochs: 3)
        opts.hyper.environment = EnvironmentShape(layers: 2, features: 8, gaussians: 12, cutoff: 4)
        opts.hyper.frame = .canonical
        let full = try Trainer(dataset: data, options: opts, runDirectory: dir.file("full"))
        _ = try full.train()
        let out = full.model.tensor("environment.output.weight")
        #expect(out.contains { $0 != 0 }, "the environment's output weights stayed at zero")
        let b = try Trainer(dataset: data, options: opts, runDirectory: dir.file("b"))
        var batches = 0
        #expect(try b.train(shouldStop: { batches == 8 }) { if case .batch = $0 { batches += 1 } } == .interrupted(epoch: 1, batch: 2))
        let b2 = try Trainer.resume(runDirectory: dir.file("b"))
        #expect(b2.model.hyper.environment == opts.hyper.environment)
        #expect(try b2.train() == .finished)
        #expect(b2.model.parameters == full.model.parameters)
    }
}
