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

    @Test("The vectorized exp is within 2 ulp of expf over the basis functions' range, and exact at the edges")
    func vectorExp() {
        // 4·10⁶ arguments spread over [−87.3, 0] (−ζd² of every basis function), plus [0, 88].
        var worstUlp: Float = 0, worstAt: Float = 0
        var buffer = [Float](repeating: 0, count: 4096)
        var rng = RandomGenerator(seed: 17)
        for block in 0..<1000 {
            for i in 0..<buffer.count {
                buffer[i] = block < 950 ? Float(rng.nextUniform(-87.3, 0)) : Float(rng.nextUniform(0, 88))
            }
            let x = buffer
            buffer.withUnsafeMutableBufferPointer { VectorMath.expInPlace($0.baseAddress!, count: $0.count) }
            for i in 0..<x.count {
                let want = expf(x[i])
                let ulp = abs(buffer[i] - want) / want.ulp
                if ulp > worstUlp { worstUlp = ulp; worstAt = x[i] }
            }
        }
        #expect(worstUlp <= 2, "worst error \(worstUlp) ulp at x = \(worstAt)")
        // Edges: 0 → 1 exactly, far below the range → 0 (QDF's 10⁶-Å rule gives −10¹² and more),
        // above it → ∞, NaN → NaN; a tail shorter than a vector takes the same path.
        var edge: [Float] = [0, -1e12, -90, 100, .nan, -.infinity, .infinity, -1, -2, -3, -0.5]
        edge.withUnsafeMutableBufferPointer { VectorMath.expInPlace($0.baseAddress!, count: $0.count) }
        #expect(edge[0] == 1 && edge[1] == 0 && edge[2] == 0 && edge[3] == .infinity && edge[4].isNaN)
        #expect(edge[5] == 0 && edge[6] == .infinity)
        for (v, x) in zip(edge[7...], [Float(-1), -2, -3, -0.5]) { #expect(abs(v - expf(x)) <= 2 * expf(x).ulp) }
        // The top of the range stays finite (2^128 is built in two halves) and the bottom normal.
        var ends: [Float] = [88.5, 88.72, -87.3]
        ends.withUnsafeMutableBufferPointer { VectorMath.expInPlace($0.baseAddress!, count: $0.count) }
        for (v, x) in zip(ends, [Float(88.5), 88.72, -87.3]) {
            #expect(v.isFinite && abs(v - expf(x)) <= 2 * expf(x).ulp, "exp(\(x)) = \(v), expf \(expf(x))")
        }
    }

    @Test("The basis functions through the vectorized exp equal the plain definition (q = 1, 2, 3)")
    func basisValuesAgainstPlain() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        let mols = Self.molecules()
        for m in mols { dict.add(m, basis: basis) }
        for m in mols {
            let layout = try BasisLayout(molecule: m, basis: basis, dictionary: dict)
            let sphere = GridField.sphere(radius: 0.75, interval: 0.3)
            var dist = [Float]()
            for a in 0..<m.atomCount { for s in sphere { for b in 0..<m.atomCount { dist.append(Float(GridField.distance(s + m.positions[a], m.positions[b]))) } } }
            let rows = sphere.count * m.atomCount
            // ζ from 0.2 to 3.2, and a q = 3 function forced in to cover powf.
            let zeta = (0..<dict.count).map { Float(0.2 + 0.1 * Double($0 % 31)) }
            var q = layout.q
            q[q.count / 2] = 3
            let forced = BasisLayout(atom: layout.atom, type: layout.type, q: q)
            var fast = [Float](repeating: 0, count: rows * forced.count)
            dist.withUnsafeBufferPointer { d in zeta.withUnsafeBufferPointer { z in fast.withUnsafeMutableBufferPointer { f in
                LCAO.basisValues(distances: d.baseAddress!, atomCount: m.atomCount, rows: rows, layout: forced,
                                 zeta: z.baseAddress!, into: f.baseAddress!)
            }}}
            var worst: Float = 0
            for i in 0..<rows {
                for k in 0..<forced.count {
                    let plain = LCAO.radial(dist[i * m.atomCount + Int(forced.atom[k])], zeta: zeta[Int(forced.type[k])], q: Int(forced.q[k]))
                    let v = fast[i * forced.count + k]
                    if plain > 1e-30 { worst = max(worst, abs(v - plain) / plain) } else { #expect(abs(v) < 1e-30) }
                }
            }
            #expect(worst < 5e-7, "\(m.id): worst relative difference \(worst)")
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
