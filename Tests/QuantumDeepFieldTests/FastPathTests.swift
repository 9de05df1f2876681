import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// The engine's fast paths (first functional layer through the basis, folded first HK
/// layer) must give what the plain computation gives.
@Suite("Fast paths against plain ones")
struct FastPathTests {
    static func molecules() -> [Molecule] {
        var rng = RandomGenerator(seed: 5)
        // Random small organic-like molecules: a chain of heavy atoms with hydrogens.
        return (0..<6).map { n in
            var zs = [Int](), ps = [SIMD3<Double>]()
            let heavy = 2 + n
            for a in 0..<heavy {
                zs.append([6, 6, 7, 8, 6][a % 5])
                ps.append(SIMD3(1.45 * Double(a), 0.3 * rng.nextUniform(-1, 1), 0.3 * rng.nextUniform(-1, 1)))
            }
            for a in 0..<(heavy + 2) {
                zs.append(1)
                let base = ps[a % heavy]
                ps.append(base + SIMD3(0.3 * rng.nextUniform(-1, 1), 1.09 * (a % 2 == 0 ? 1 : -1), 0.5 * rng.nextUniform(-1, 1)))
            }
            return Molecule(id: "m\(n)", atomicNumbers: zs, positions: ps, properties: [-10 * Double(heavy)])
        }
    }

    @Test("First functional layer through the basis: same predictions and gradients as forming ψ")
    func foldedFirstLayer() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in Self.molecules() { dict.add(m, basis: basis) }
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis), dictionary: dict, seed: 3)
        let geoms = try Self.molecules().map { try model.geometry($0, withPotential: true) }
        let fast = Engine(model: model), plain = Engine(model: model)
        fast.firstLayerThroughBasis = .always
        plain.firstLayerThroughBasis = .never
        let a = fast.predict(geoms, parameters: model.parameters), b = plain.predict(geoms, parameters: model.parameters)
        #expect(fast.folded.allSatisfy { $0 } && plain.folded.allSatisfy { !$0 })
        for (x, y) in zip(a, b) {
            #expect(abs(x[0] - y[0]) <= 1e-4 * max(1, abs(y[0])), "fast \(x[0]) vs plain \(y[0])")
        }
        var ga = [Float](repeating: 0, count: model.layout.totalCount), gb = ga
        let la = fast.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &ga)
        let lb = plain.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &gb)
        #expect(abs(la - lb) <= 1e-4 * lb)
        for e in model.layout.entries {
            let scale = e.range.map { abs(gb[$0]) }.max() ?? 0
            let diff = e.range.map { abs(ga[$0] - gb[$0]) }.max() ?? 0
            #expect(diff <= 1e-3 * scale + 1e-7, "\(e.name): max difference \(diff), largest gradient \(scale)")
        }
    }

    @Test("Molecule-parallel training step: same losses and updated parameters as one engine")
    func parallelStep() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in Self.molecules() { dict.add(m, basis: basis) }
        let h = Hyperparameters(basisSet: basis, dim: 32, layerFunctional: 2, hiddenHK: 24, layerHK: 2)
        var a = try QDFModel(hyper: h, dictionary: dict, seed: 4), b = try QDFModel(hyper: h, dictionary: dict, seed: 4)
        let geoms = try Self.molecules().map { try a.geometry($0, withPotential: true) }
        let serial = TrainingStep(architecture: a.architecture, workers: 1)
        let parallel = TrainingStep(architecture: b.architecture, workers: 2)
        let adamA = Adam(layout: a.layout, learningRate: 1e-3), adamB = Adam(layout: b.layout, learningRate: 1e-3)
        for batch in [Array(geoms[0..<4]), Array(geoms[1..<6]), [geoms[2]]] {
            let (ea, va) = serial.step(batch, parameters: &a.parameters, adam: adamA, hkMap: true)
            let (eb, vb) = parallel.step(batch, parameters: &b.parameters, adam: adamB, hkMap: true)
            #expect(abs(ea - eb) <= 1e-5 * ea && abs(va - vb) <= 1e-5 * va, "E \(ea) vs \(eb), V \(va) vs \(vb)")
        }
        // Adam normalizes steps, so rounding differences in tiny gradients can move a
        // parameter by up to ~lr; compare against that scale.
        let maxDiff = zip(a.parameters, b.parameters).map { abs($0 - $1) }.max() ?? 0
        #expect(maxDiff < 3e-3, "largest parameter difference \(maxDiff)")
    }

    @Test("Large molecules in chunks (bounded memory) give the whole-molecule predictions")
    func chunkedLargeMolecules() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in Self.molecules() { dict.add(m, basis: basis) }
        for op in [Readout.sum, .mean] {
            let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, operation: op, outputs: 1), dictionary: dict, seed: 8)
            let whole = Engine(model: model).predict(try Self.molecules().map { try model.geometry($0) },
                                                     parameters: model.parameters)
            for (m, w) in zip(Self.molecules(), whole) {
                let chunked = try LargeMolecule.predict(m, model: model, chunkRows: 37)
                #expect(abs(chunked[0] - w[0]) <= 1e-4 * max(1, abs(w[0])), "\(op) \(m.id): chunked \(chunked[0]) vs \(w[0])")
            }
            // The predictor routes molecules above its threshold to the chunked path, in order.
            let predictor = Predictor(model: model)
            predictor.largeMoleculeValues = LargeMolecule.regularValues(Self.molecules()[3], model: model)
            let routed = try predictor.predict(Self.molecules())
            for (r, w) in zip(routed, whole) { #expect(abs(r.predicted[0] - w[0]) <= 1e-4 * max(1, abs(w[0]))) }
        }
    }

    static func lattice(_ nx: Int, _ ny: Int, _ nz: Int) -> Molecule {
        var zs = [Int](), ps = [SIMD3<Double>]()
        for x in 0..<nx { for y in 0..<ny { for z in 0..<nz {
            zs.append((x + y + z) % 3 == 0 ? 6 : 1); ps.append(SIMD3(1.5 * Double(x), 1.5 * Double(y), 1.5 * Double(z)))
        } } }
        return Molecule(id: "lattice\(nx * ny * nz)", atomicNumbers: zs, positions: ps)
    }

    @Test("Big molecules: routed to the chunked path by size; a 100-atom lattice predicts the same both ways")
    func bigMolecules() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        dict.add(Self.lattice(2, 2, 2), basis: basis)
        // With the reference width, 400 atoms exceed the default threshold and 29 do not.
        let wide = try QDFModel(hyper: Hyperparameters(basisSet: basis), dictionary: dict, seed: 2)
        let threshold = Predictor(model: wide).largeMoleculeValues
        #expect(LargeMolecule.regularValues(Self.lattice(8, 10, 5), model: wide) > threshold)
        #expect(LargeMolecule.regularValues(Self.lattice(1, 1, 29), model: wide) < threshold)
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 32, layerFunctional: 2, hiddenHK: 8, layerHK: 1),
                                 dictionary: dict, seed: 2)
        let big = Self.lattice(5, 5, 4)
        let whole = Engine(model: model).predict([try model.geometry(big)], parameters: model.parameters)[0][0]
        let predictor = Predictor(model: model)
        predictor.largeMoleculeValues = 1
        let chunked = try predictor.predict([big])[0].predicted[0]
        #expect(whole.isFinite && abs(chunked - whole) <= 1e-4 * max(1, abs(whole)), "chunked \(chunked) vs whole \(whole)")
    }

    @Test("Automatic choice folds QM9-sized molecules and not huge ones")
    func policy() {
        #expect(FirstLayerThroughBasis.pays(fieldCount: 56 * 18, orbitalCount: 9 * 14 + 9 * 4, dim: 250))
        #expect(!FirstLayerThroughBasis.pays(fieldCount: 56 * 1000, orbitalCount: 400 * 14 + 600 * 4, dim: 250))
    }

    @Test("Reference model: predictions identical with and without the fast path",
          .enabled(if: Shared.available, Shared.skipMessage))
    func referenceFastPath() throws {
        let model = try QDFModel.load(path: Shared.referenceModel)
        let mols = Array(try readMolecules(Shared.dataset("QM9over15atoms_atomizationenergy_eV/test.txt")).prefix(40))
        let geoms = try mols.map { try model.geometry($0) }
        let fast = Engine(model: model), plain = Engine(model: model)
        plain.firstLayerThroughBasis = .never
        let a = fast.predict(geoms, parameters: model.parameters), b = plain.predict(geoms, parameters: model.parameters)
        #expect(fast.folded.contains(true))
        let maxDiff = zip(a, b).map { abs($0[0] - $1[0]) }.max() ?? 0
        #expect(maxDiff < 1e-3, "largest difference \(maxDiff) eV")
    }
}
