import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity

/// The canonical frame (docs/model.md §17): the same coordinates, and so the same
/// prediction, however a molecule is turned, mirrored, moved or its atoms ordered.
@Suite("Canonical frame")
struct MoleculeFrameTests {
    /// Uniform random rotations (Shoemake) from a fixed seed, independent of MoleculeRotations.
    static func randomRotations(_ count: Int, seed: UInt64) -> [Rotation] {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        return (0..<count).map { _ in
            let u1 = next(), u2 = next(), u3 = next()
            let a = (1 - u1).squareRoot(), b = u1.squareRoot()
            return Rotation(quaternion: SIMD4(a * sin(2 * .pi * u2), a * cos(2 * .pi * u2), b * sin(2 * .pi * u3), b * cos(2 * .pi * u3)))
        }
    }

    /// The molecule's canonical coordinates, sorted (element, x, y, z) so that atom order does not matter.
    static func canonicalCoordinates(_ m: Molecule) -> [(Int, SIMD3<Double>)] {
        let f = MoleculeFrame.canonical(m)
        return zip(m.atomicNumbers, m.positions.map(f.toFrame)).sorted {
            ($0.0, $0.1.x, $0.1.y, $0.1.z) < ($1.0, $1.1.x, $1.1.y, $1.1.z)
        }
    }

    /// Largest distance between two canonical placements matched atom by atom (nearest of the same element).
    static func deviation(_ a: Molecule, _ b: Molecule) -> Double {
        let fa = MoleculeFrame.canonical(a), fb = MoleculeFrame.canonical(b)
        let ua = a.positions.map(fa.toFrame), ub = b.positions.map(fb.toFrame)
        var worst = 0.0
        for i in ua.indices {
            var best = Double.infinity
            for j in ub.indices where b.atomicNumbers[j] == a.atomicNumbers[i] {
                let d = ua[i] - ub[j]; best = min(best, (d * d).sum().squareRoot())
            }
            worst = max(worst, best)
        }
        return worst
    }

    /// Turned, mirrored (x → −x), moved and with its atoms reversed.
    static func variants(_ m: Molecule, seed: UInt64) -> [Molecule] {
        var out = [Molecule]()
        for (k, r) in randomRotations(6, seed: seed).enumerated() {
            var v = m.rotated(by: r)
            v.positions = v.positions.map { $0 + SIMD3(3.5, -1.25, 7.0) * Double(k) }
            if k % 2 == 1 { v.positions = v.positions.map { SIMD3(-$0.x, $0.y, $0.z) } }
            if k >= 3 { v.atomicNumbers.reverse(); v.positions.reverse() }
            out.append(v)
        }
        return out
    }

    static func molecule(_ atoms: [(Int, Double, Double, Double)], id: String = "m") -> Molecule {
        Molecule(id: id, atomicNumbers: atoms.map(\.0), positions: atoms.map { SIMD3($0.1, $0.2, $0.3) })
    }

    // Test molecules with their symmetric-top or degenerate shapes.
    static let hydroxyacetonitrile = molecule([(6, -0.0086, 1.5020, -0.0068), (6, 0.0110, -0.0176, -0.0138), (8, 0.6809, -0.4404, -1.1931),
                                               (1, 1.0115, 1.8966, -0.0192), (1, -0.5316, 1.8808, -0.8897), (1, -0.5167, 1.8761, 0.8871),
                                               (1, 0.5238, -0.3891, 0.8882), (1, -1.0203, -0.4051, 0.0169), (1, 0.6953, -1.4018, -1.2015)])
    static var benzene: Molecule {
        var atoms = [(Int, Double, Double, Double)]()
        for k in 0..<6 {
            let a = Double(k) * .pi / 3
            atoms.append((6, 1.39 * cos(a), 1.39 * sin(a), 0))
            atoms.append((1, 2.47 * cos(a), 2.47 * sin(a), 0))
        }
        return molecule(atoms, id: "benzene")
    }
    static let ammonia = molecule([(7, 0, 0, 0.1165), (1, 0, 0.9397, -0.2718), (1, 0.8138, -0.4699, -0.2718), (1, -0.8138, -0.4699, -0.2718)])
    static let methane = molecule([(6, 0, 0, 0), (1, 0.6291, 0.6291, 0.6291), (1, -0.6291, -0.6291, 0.6291),
                                   (1, -0.6291, 0.6291, -0.6291), (1, 0.6291, -0.6291, -0.6291)])
    static let carbonDioxide = molecule([(6, 0, 0, 0), (8, 0, 0, 1.16), (8, 0, 0, -1.16)])
    static let hydrogenCyanide = molecule([(1, 0, 0, -1.066), (6, 0, 0, 0), (7, 0, 0, 1.156)])
    /// Formaldehyde: planar, C2v, a third moment of zero along the in-plane axis ⟂ C=O.
    static let formaldehyde = molecule([(6, 0, 0, 0), (8, 0, 0, 1.205), (1, 0, 0.943, -0.587), (1, 0, -0.943, -0.587)])

    @Test("Distinct moments: the same canonical coordinates after rotations, reflections, translations and atom reordering (1e-9 Å)")
    func distinctMoments() {
        let m = Self.hydroxyacetonitrile
        #expect(MoleculeFrame.analyze(m).shape == .distinct)
        print(MoleculeFrame.analyze(m).summary)
        for v in Self.variants(m, seed: 11) { #expect(Self.deviation(m, v) < 1e-9) }
        // The frame: centre of charge at the origin, M diagonal with the largest spread along x.
        let f = MoleculeFrame.canonical(m)
        let u = m.positions.map(f.toFrame)
        var c = SIMD3<Double>(), mxx = 0.0, myy = 0.0, mzz = 0.0, mxy = 0.0
        for (z, p) in zip(m.atomicNumbers, u) {
            c += Double(z) * p; mxx += Double(z) * p.x * p.x; myy += Double(z) * p.y * p.y; mzz += Double(z) * p.z * p.z
            mxy += Double(z) * p.x * p.y
        }
        #expect((c * c).sum().squareRoot() < 1e-12)
        #expect(mxx > myy && myy > mzz && abs(mxy) < 1e-9)
        // Third moments positive along each axis the third moment decides.
        let undecided = MoleculeFrame.analyze(m).undecided
        for k in 0..<3 where !undecided.contains(k) {
            #expect(zip(m.atomicNumbers, u).map { Double($0) * pow($1[k], 3) }.reduce(0, +) > 0)
        }
        // Round trip back to the input.
        for (p, q) in zip(m.positions, u) { #expect(((f.fromFrame(q) - p) * (f.fromFrame(q) - p)).sum() < 1e-24) }
    }

    @Test("Degenerate moments (benzene, NH3, CH4), linear molecules (CO2, HCN), a zero third moment (H2CO): invariant within 1e-6 Å, one frame each")
    func degenerateCases() {
        let cases: [(Molecule, FrameAnalysis.Shape)] = [(Self.benzene, .oblate), (Self.ammonia, .oblate), (Self.methane, .spherical),
                                                        (Self.carbonDioxide, .prolate), (Self.hydrogenCyanide, .prolate),
                                                        (Self.formaldehyde, .distinct)]
        for (m, shape) in cases {
            let a = MoleculeFrame.analyze(m)
            #expect(a.shape == shape, "\(m.id): \(a.summary)")
            // Symmetric molecules: every choice the degeneracy leaves gives the same coordinates.
            #expect(a.frames.count == 1, "\(a.summary)")
            for v in Self.variants(m, seed: 23) { #expect(Self.deviation(m, v) < 1e-6, "\(m.id): \(a.summary)") }
        }
    }

    @Test("Float32 noise in the file (1e-5 Å) moves canonical coordinates by no more than the noise, times 100")
    func noise() {
        var state: UInt64 = 99
        func jitter() -> Double { state = state &* 6364136223846793005 &+ 1; return (Double(state >> 11) / Double(1 << 53) - 0.5) * 2e-5 }
        for m in [Self.hydroxyacetonitrile, Self.benzene, Self.methane, Self.ammonia] {
            for v in Self.variants(m, seed: 5) {
                var noisy = v
                noisy.positions = v.positions.map { $0 + SIMD3(jitter(), jitter(), jitter()) }
                #expect(Self.deviation(m, noisy) < 2e-3, "\(m.id)")
            }
        }
    }

    @Test("A model file records its frame (qdf info names it); files without the key are input-frame; an unknown frame is refused")
    func recordedFrame() throws {
        let dir = try TemporaryDirectory()
        var model = try ModelFileTests.smallModel()
        #expect(model.hyper.frame == .input)
        model = model.placing(in: .canonical)
        try model.save(path: dir.file("m.safetensors"))
        let loaded = try QDFModel.load(path: dir.file("m.safetensors"))
        #expect(loaded.hyper.frame == .canonical && loaded.parameters == model.parameters)
        #expect(loaded.fileMetadata["frame"] == "canonical")
        // qdf info names it.
        let info = try runProcess(InterruptionTests.qdf, ["info", "--model", dir.file("m.safetensors")])
        #expect(info.stdout.contains("frame: canonical"), "\(info.stdout)\(info.stderr)")
        let bad = try SafetensorsFile.parse(try Data(contentsOf: URL(fileURLWithPath: dir.file("m.safetensors"))), path: "m")
        var none = bad.metadata; none["frame"] = nil
        #expect(try QDFModel(file: SafetensorsFile(tensors: bad.tensors, metadata: none)).hyper.frame == .input)
        var md = bad.metadata; md["frame"] = "sideways"
        #expect(throws: QDFError.self) { _ = try QDFModel(file: SafetensorsFile(tensors: bad.tensors, metadata: md)) }
    }

    @Test("A canonical-frame model predicts the same for every orientation, mirror image and atom order")
    func predictionInvariance() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        for m in [Self.hydroxyacetonitrile, Self.benzene, Self.ammonia, Self.methane, Self.carbonDioxide, Self.hydrogenCyanide] {
            dict.add(m, basis: basis)
        }
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 16, layerFunctional: 2, hiddenHK: 8, layerHK: 1, frame: .canonical),
                                 dictionary: dict, seed: 3)
        let input = model.placing(in: .input)
        for m in [Self.hydroxyacetonitrile, Self.benzene, Self.ammonia, Self.methane, Self.carbonDioxide, Self.hydrogenCyanide] {
            let vs = Self.variants(m, seed: 41)
            let p = try Predictor(model: model, workers: 1).predict([m] + vs).map { Double($0.predicted[0]) }
            for x in p.dropFirst() { #expect(abs(x - p[0]) <= 1e-4 * max(1, abs(p[0])), "\(m.id)") }
            // The input-frame model is not invariant for the non-symmetric molecule (so the test can fail).
            if m.id == "m" {
                let q = try Predictor(model: input, workers: 1).predict([m] + vs).map { Double($0.predicted[0]) }
                #expect(q.dropFirst().contains { abs($0 - q[0]) > 1e-4 * max(1, abs(q[0])) })
            }
        }
    }

    @Test("The density of a rotated input is the rotated density (point by point, 1e-4 relative)")
    func rotatedDensity() throws {
        let basis = try BasisSet("6-31G")
        var dict = OrbitalDictionary()
        dict.add(Self.hydroxyacetonitrile, basis: basis)
        let model = try QDFModel(hyper: Hyperparameters(basisSet: basis, dim: 16, layerFunctional: 1, hiddenHK: 8, layerHK: 1, frame: .canonical),
                                 dictionary: dict, seed: 5)
        let m = Self.hydroxyacetonitrile
        let r = Self.randomRotations(1, seed: 77)[0]
        let turned = m.rotated(by: r)
        var c = SIMD3<Double>()
        for p in m.positions { c += p }
        c /= Double(m.atomCount)
        // Points around the molecule, and the same points turned with it.
        var points = [SIMD3<Double>]()
        for i in -4...4 { for j in -4...4 { for k in -3...3 { points.append(c + SIMD3(Double(i), Double(j), Double(k)) * 0.45) } } }
        let turnedPoints = points.map { r.apply($0 - c) + c }
        let a = try DensityField(model: model, molecule: m).density(at: points)
        let b = try DensityField(model: model, molecule: turned).density(at: turnedPoints)
        let peak = a.max()!
        #expect(peak > 0)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * peak) }
        // An input-frame model does not give this (the test can fail).
        let ai = try DensityField(model: model.placing(in: .input), molecule: m).density(at: points)
        let bi = try DensityField(model: model.placing(in: .input), molecule: turned).density(at: turnedPoints)
        #expect(zip(ai, bi).contains { abs($0 - $1) > 1e-3 * peak })
        // Field points are in the input's coordinates: around the atoms where the file put them.
        let fp = try DensityField(model: model, molecule: m).fieldPoints
        let first = fp[0..<model.sphere.count].reduce(SIMD3<Double>(), +) / Double(model.sphere.count)
        #expect(((first - m.positions[0]) * (first - m.positions[0])).sum().squareRoot() < 1e-9)
    }

    @Test("Training with --frame canonical resumes bit for bit and its model records the frame")
    func canonicalResume() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        var opts = try TrainingTests.smallOptions(epochs: 3)
        opts.hyper.frame = .canonical
        let full = try Trainer(dataset: data, options: opts, runDirectory: dir.file("full"))
        _ = try full.train()
        let a = try Trainer(dataset: data, options: opts, runDirectory: dir.file("a"))
        var batches = 0
        _ = try a.train(shouldStop: { batches == 5 }) { if case .batch = $0 { batches += 1 } }
        let a2 = try Trainer.resume(runDirectory: dir.file("a"))
        #expect(try a2.train() == .finished)
        #expect(a2.model.parameters == full.model.parameters)
        #expect(try QDFModel.load(path: dir.file("full/model.safetensors")).hyper.frame == .canonical)
        // Differs from the same run in the input frame (the frame is really applied).
        var inputOpts = opts
        inputOpts.hyper.frame = .input
        let plain = try Trainer(dataset: data, options: inputOpts, runDirectory: dir.file("plain"))
        _ = try plain.train()
        #expect(plain.model.parameters != full.model.parameters)
    }

    @Test("Published model: with --frame canonical, as-given and randomly rotated test molecules give the same predictions",
          .enabled(if: Shared.available, Shared.skipMessage))
    func publishedModelCanonical() throws {
        let model = try QDFModel.load(path: Shared.referenceModel).placing(in: .canonical)
        let test = Array(try readMolecules(Shared.dataset("QM9under14atoms_atomizationenergy_eV") + "/test.txt").prefix(200))
        let rotations = Self.randomRotations(test.count, seed: 2026)
        let turned = zip(test, rotations).map { $0.rotated(by: $1) }
        let p = try Predictor(model: model).predict(test), q = try Predictor(model: model).predict(turned)
        let diffs = zip(p, q).map { abs(Double($0.predicted[0]) - Double($1.predicted[0])) }.sorted()
        #expect(diffs[Int(0.99 * Double(diffs.count))] <= 1e-3, "p99 \(diffs[Int(0.99 * Double(diffs.count))])")
        // As given (input frame) they differ.
        let input = try QDFModel.load(path: Shared.referenceModel)
        let pi = try Predictor(model: input).predict(test), qi = try Predictor(model: input).predict(turned)
        let meanChange = zip(pi, qi).map { abs(Double($0.predicted[0]) - Double($1.predicted[0])) }.reduce(0, +) / Double(test.count)
        #expect(meanChange > 0.01)
    }
}
