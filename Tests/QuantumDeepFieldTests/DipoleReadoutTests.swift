import Foundation
import Testing
import QuantumDeepField

// The dipole moment from the density (Model/DipoleReadout.swift): values by hand and the
// gradient by finite differences.
@Suite("Dipole readout")
struct DipoleReadoutTests {
    static let sphere = GridField.sphere(radius: 0.75, interval: 0.3)

    @Test("Hand-computed: a density that follows the nuclei has no dipole; moving charge gives q·d in debye")
    func values() throws {
        // H2 along x: 2 electrons, no cores. ρ spread evenly over both spheres → μ = 0.
        let h2 = Molecule(id: "h2", atomicNumbers: [1, 1], positions: [SIMD3(0, 0, 0), SIMD3(0.74, 0, 0)])
        let f = DipoleReadout.Frame(molecule: h2, sphere: Self.sphere)
        let n = f.points.count
        var rho = [Float](repeating: 2 / Float(n), count: n)
        #expect(DipoleReadout.magnitude(rho: rho, frame: f) < 1e-6)
        // Half an electron moved from atom 0's sphere to atom 1's: μ = −0.5 e × 0.74 Å along x.
        let per = Self.sphere.count
        for i in 0..<per { rho[i] -= 0.5 / Float(per); rho[per + i] += 0.5 / Float(per) }
        let mu = DipoleReadout.magnitude(rho: rho, frame: f)
        #expect(abs(mu - 0.5 * 0.74 * DipoleReadout.debyePerElectronAngstrom) < 1e-4, "\(mu)")
        // CO: the frozen 1s² cores stay on the nuclei; the grid holds 10 of 14 electrons (κ = 10/14).
        let co = Molecule(id: "co", atomicNumbers: [6, 8], positions: [SIMD3(0, 0, 0), SIMD3(1.128, 0, 0)])
        let g = DipoleReadout.Frame(molecule: co, sphere: Self.sphere)
        #expect(abs(g.centre.kappa - 10.0 / 14.0) < 1e-12)
        // ρ as 4 valence electrons on C and 6 on O (scaled to Σρ = 14): a neutral-atom density, no dipole.
        let m = Self.sphere.count
        let r = (0..<(2 * m)).map { i in Float(i < m ? 4.0 : 6.0) * 14 / 10 / Float(m) }
        #expect(DipoleReadout.magnitude(rho: r, frame: g) < 1e-5)
    }

    @Test("The gradient matches central finite differences (Float64 sums of Float32 ρ)")
    func gradient() throws {
        let m = Molecule(id: "hcn", atomicNumbers: [1, 6, 7],
                         positions: [SIMD3(-1.06, 0.1, 0), SIMD3(0, 0, 0), SIMD3(1.15, -0.05, 0.02)])
        let f = DipoleReadout.Frame(molecule: m, sphere: Self.sphere)
        var rng = RandomGenerator(seed: 4)
        var rho = (0..<f.points.count).map { _ in Float(rng.nextUniform(0, 0.3)) }
        var dRho = [Float](repeating: 0, count: rho.count)
        DipoleReadout.backward(dMagnitude: 1.7, rho: rho, frame: f, dRho: &dRho)
        let h: Float = 1e-2
        for i in stride(from: 0, to: rho.count, by: 7) {
            let keep = rho[i]
            rho[i] = keep + h; let up = DipoleReadout.magnitude(rho: rho, frame: f)
            rho[i] = keep - h; let down = DipoleReadout.magnitude(rho: rho, frame: f)
            rho[i] = keep
            let fd = 1.7 * (up - down) / Double(2 * h)
            #expect(abs(fd - Double(dRho[i])) < 1e-3 * max(1, abs(fd)), "point \(i): finite differences \(fd), backward \(dRho[i])")
        }
    }

    // MARK: - Through the engine: `Readout.dipole` (docs/model.md §20)

    /// The molecules of the gradient tests with one property, |μ| in debye (methane distorted).
    static func molecules() -> [Molecule] {
        GradientTests.molecules().enumerated().map { k, m in
            var m = m
            m.properties = [[1.85, 0.4, 2.98][k]]
            // Methane stretched along one C–H bond: a symmetric molecule's density has no dipole
            // at all, where |μ| has its kink.
            if m.id == "methane" { m.positions[1] *= 1.15 }
            return m
        }
    }

    /// A small dipole-readout model (3-21G, dim 7) with spread ζ, with or without the
    /// orbital environment (random output and gate, so that gradients reach it).
    static func model(environment: Bool = false, seed: UInt64 = 7) throws -> QDFModel {
        let basis = try BasisSet("3-21G")
        var dict = OrbitalDictionary()
        for m in molecules() { dict.add(m, basis: basis) }
        let h = Hyperparameters(basisSet: basis, dim: 7, layerFunctional: 1, hiddenHK: 6, layerHK: 1, operation: .dipole,
                                outputs: 1,
                                environment: environment ? EnvironmentShape(layers: 1, features: 6, gaussians: 5, cutoff: 3) : nil)
        var model = try QDFModel(hyper: h, dictionary: dict, seed: seed)
        for (n, i) in model.layout["zeta.weight"]!.range.enumerated() { model.parameters[i] = 0.6 + 0.15 * Float(n % 5) }
        if environment {
            var rng = RandomGenerator(seed: 3)
            for name in ["environment.output.weight", "environment.gate.weight"] {
                for i in model.layout[name]!.range { model.parameters[i] = Float(rng.nextUniform(-0.8, 0.8)) }
            }
        }
        return model
    }

    /// `model(environment:)` with `molecules()` and their geometries.
    static func fixture(environment: Bool) throws -> (QDFModel, [Molecule], [MoleculeGeometry]) {
        let model = try Self.model(environment: environment), ms = molecules()
        return (model, ms, try ms.map { try model.geometry($0) })
    }

    /// |μ| in debye in Float64 from the plain-loop reference's ψ, written from the equation
    /// with the origin at (0, 0, 0) rather than the centre of charge (the result must not
    /// depend on it) and the cores counted here: 2 electrons for Li–Ne, none for H.
    static func referenceDipole(_ reference: DoubleReference, _ g: MoleculeGeometry, _ m: Molecule) -> Double {
        let psi = reference.orbitals(g), sphere = reference.model.sphere
        let cores = m.atomicNumbers.map { $0 > 2 ? 2 : 0 }
        let ne = Double(m.atomicNumbers.reduce(0, +)), valence = ne - Double(cores.reduce(0, +))
        var mu = SIMD3<Double>(repeating: 0)
        for (a, r) in m.positions.enumerated() { mu += Double(m.atomicNumbers[a] - cores[a]) * r }
        var i = 0
        for r in m.positions {
            for s in sphere {
                let rho = psi[i].reduce(0) { $0 + $1 * $1 }
                mu -= valence / ne * rho * (r + s)
                i += 1
            }
        }
        return (mu * mu).sum().squareRoot() * 4.803204
    }

    @Test("The engine's |μ| equals a Float64 computation from the plain-loop ψ; the chunked large-molecule path agrees",
          arguments: [false, true])
    func engineForward(environment: Bool) throws {
        let (model, ms, geoms) = try Self.fixture(environment: environment)
        let predicted = Engine(model: model).predict(geoms, parameters: model.parameters)
        let reference = DoubleReference(model)
        for (k, m) in ms.enumerated() {
            let want = Self.referenceDipole(reference, geoms[k], m)
            #expect(want > 0.05, "\(m.id): a random model's density should carry a dipole")
            #expect(abs(Double(predicted[k][0]) - want) <= 1e-4 * max(want, 1), "\(m.id): engine \(predicted[k][0]), Float64 \(want)")
            let chunked = try LargeMolecule.predict(m, model: model, chunkRows: 37)
            #expect(abs(chunked[0] - predicted[k][0]) <= 1e-4 * max(predicted[k][0], 1), "\(m.id): chunked \(chunked[0]), engine \(predicted[k][0])")
        }
    }

    @Test("Loss_E through the dipole readout: the orbital gradients match central differences of the Float64 loss; nothing else has one",
          arguments: [false, true])
    func engineGradient(environment: Bool) throws {
        let (model, ms, geoms) = try Self.fixture(environment: environment)
        var reference = DoubleReference(model)
        func loss() -> Double {
            zip(geoms, ms).reduce(0.0) { s, gm in
                let e = Self.referenceDipole(reference, gm.0, gm.1) - gm.1.properties[0]
                return s + e * e
            } / Double(ms.count)
        }
        var grad = [Float](repeating: 0, count: model.layout.totalCount)
        let engineLoss = Engine(model: model).energyLossAndGradient(geoms, parameters: model.parameters, gradient: &grad)
        #expect(abs(engineLoss - loss()) <= 1e-4 * loss(), "loss: engine \(engineLoss), Float64 \(loss())")
        var rng = RandomGenerator(seed: 11)
        var checked = 0
        let coefficientScale = Double(model.layout["coefficient.weight"]!.range.map { abs(grad[$0]) }.max() ?? 0)
        for e in model.layout.entries {
            let maxGrad = e.range.map { abs(grad[$0]) }.max() ?? 0
            let orbital = e.name == "coefficient.weight" || e.name == "zeta.weight" || e.name.hasPrefix("environment.")
            guard orbital else {
                #expect(maxGrad == 0, "\(e.name) does not reach |μ| but got gradient \(maxGrad)")
                continue
            }
            #expect(maxGrad > 0, "\(e.name) received no gradient")
            let picks = e.count <= 6 ? Array(e.range) : (0..<6).map { _ in e.offset + rng.nextIndex(e.count) }
            for i in picks {
                let x = reference.p[i], h = 1e-5
                reference.p[i] = x + h; let lp = loss()
                reference.p[i] = x - h; let lm = loss()
                reference.p[i] = x
                let numeric = (lp - lm) / (2 * h), analytic = Double(grad[i])
                let floor = e.name.hasPrefix("environment.") ? max(Double(maxGrad), coefficientScale) : Double(maxGrad)
                #expect(abs(analytic - numeric) <= 1e-3 * max(abs(numeric), 1e-2 * floor),
                        "\(e.name)[\(i - e.offset)]: analytic \(analytic), numeric \(numeric)")
                checked += 1
            }
        }
        #expect(checked >= (environment ? 20 : 8))
    }

    @Test("Training through the dipole readout fits a teacher's |μ|; the functional stays untouched; the model file keeps the readout")
    func trainsThrough() throws {
        let dir = try TemporaryDirectory()
        let toy = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        // Targets: the |μ| of another dipole model (seed 101), which the architecture can represent.
        let h = Hyperparameters(basisSet: try BasisSet("6-31G"), dim: 8, layerFunctional: 1, hiddenHK: 8, layerHK: 1,
                                operation: .dipole, outputs: 1)
        let teacher = try QDFModel(hyper: h, dictionary: toy.orbitalDictionary(basis: h.basisSet), seed: 101)
        let teach = try Predictor(model: teacher, workers: 1)
        func relabel(_ ms: [Molecule]) throws -> [Molecule] {
            try zip(ms, teach.predict(ms)).map { m, p in var m = m; m.properties = [Double(p.predicted[0])]; return m }
        }
        let data = Dataset(name: "toy_mu_D", train: try relabel(toy.train), val: try relabel(toy.val), test: try relabel(toy.test))
        var o = TrainingOptions()
        o.hyper = h
        o.epochs = 12; o.batchSize = 4; o.learningRate = 3e-2; o.stepSize = 100; o.seed = 5
        let trainer = try Trainer(dataset: data, options: o, workers: 1)
        let before = trainer.model
        func mae(_ model: QDFModel) throws -> Double {
            let p = try Predictor(model: model, workers: 1).predict(data.train)
            return zip(p, data.train).reduce(0.0) { $0 + abs(Double($1.0.predicted[0]) - $1.1.properties[0]) } / Double(data.train.count)
        }
        let mae0 = try mae(before)
        #expect(try trainer.train() == .finished)
        let mae1 = try mae(trainer.model)
        #expect(mae1 < 0.5 * mae0, "training MAE \(mae0) D before, \(mae1) D after")
        for e in before.layout.entries where e.name.hasPrefix("W_functional") || e.name.hasPrefix("W_property") {
            #expect(Array(trainer.model.parameters[e.range]) == Array(before.parameters[e.range]), "\(e.name) changed")
        }
        for name in ["coefficient.weight", "zeta.weight"] {
            let e = before.layout[name]!
            #expect(Array(trainer.model.parameters[e.range]) != Array(before.parameters[e.range]), "\(name) did not train")
        }
        let path = dir.file("mu.safetensors")
        try trainer.model.save(path: path)
        let loaded = try QDFModel.load(path: path)
        #expect(loaded.hyper.operation == .dipole)
        #expect(try Predictor(model: loaded, workers: 1).predict(data.test).map(\.predicted)
                == Predictor(model: trainer.model, workers: 1).predict(data.test).map(\.predicted))
    }

    @Test("Wrong uses of the dipole readout are refused with the reason")
    func refusals() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        var o = TrainingOptions()
        o.hyper = Hyperparameters(basisSet: try BasisSet("6-31G"), dim: 8, layerFunctional: 1, hiddenHK: 8, layerHK: 1,
                                  operation: .dipole, outputs: 1)
        o.elementBaseline = true
        #expect(throws: QDFError.self) { try o.validate() }
        o.elementBaseline = false
        o.freeze = .orbitals
        #expect(throws: QDFError.self) { try o.validate() }
        var two = o.hyper
        two.outputs = 2
        #expect(throws: QDFError.self) { try two.validate() }
        let model = try QDFModel(hyper: o.hyper, dictionary: data.orbitalDictionary(basis: o.hyper.basisSet), seed: 1)
        #expect(throws: QDFError.self) { try ReadoutRefit.fit(model: model, molecules: data.train) }
        let pair = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "toy_pair_eV", outputs: 2))
        #expect(throws: QDFError.self) { try pair.chooseReadout(requested: .dipole) }
        #expect(try data.chooseReadout(requested: .dipole).warning?.contains("debye") == true)   // a data set in eV
    }

    @Test("qdf train --readout dipole (from scratch and from a model) and qdf probe --operation dipole from the command line",
          .enabled(if: InterruptionTests.available, "the qdf executable is not built beside the tests"))
    func commandLine() throws {
        let dir = try TemporaryDirectory()
        let energy = try InterruptionTests.dataset(dir)
        let mu = try TrainingTests.writeDataset(dir, name: "toy_mu_D")
        let chem = ["--allow-open-shell", "--allow-geometry"]
        let small = ["--dim", "16", "--hidden-hk", "8", "--layer-functional", "1", "--layer-hk", "1"]
        var r = try InterruptionTests.run(["train", energy, "-o", dir.file("src"), "--epochs", "1"] + small + chem)
        #expect(r.status == 0, "\(r.stderr)")
        let src = dir.file("src/model.safetensors")
        r = try InterruptionTests.run(["train", mu, "-o", dir.file("scratch"), "--readout", "dipole", "--epochs", "1"] + small + chem)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("readout dipole"))
        #expect(try QDFModel.load(path: dir.file("scratch/model.safetensors")).hyper.operation == .dipole)
        r = try InterruptionTests.run(["train", mu, "-o", dir.file("ft"), "--init-from", src, "--operation", "dipole",
                                       "--epochs", "1", "--recipe", "fast"] + chem)
        #expect(r.status == 0, "\(r.stderr)")
        let ft = try QDFModel.load(path: dir.file("ft/model.safetensors"))
        #expect(ft.hyper.operation == .dipole && ft.architecture.elementBaseline == nil && ft.metadata["init_from"] == "model.safetensors")
        // The probe: |μ| of the source's density, nothing fitted; the same as predicting with the start.
        let probe = try runProcess(InterruptionTests.qdf, ["probe", "--model", src, mu, "--operation", "dipole",
                                                           "-o", dir.file("probe.safetensors")])
        #expect(probe.status == 0, "\(probe.stderr)")
        let rows = probe.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.first?.first == "split" && rows.count == 4, "\(probe.stdout)")
        let probed = try QDFModel.load(path: dir.file("probe.safetensors"))
        let srcModel = try QDFModel.load(path: src)
        #expect(probed.hyper.operation == .dipole && probed.tensor("coefficient.weight") == srcModel.tensor("coefficient.weight"))
        let data = try Dataset.load(directory: mu)
        let p = try Predictor(model: probed, workers: 1).predict(data.test)
        let mae = zip(p, data.test).reduce(0.0) { $0 + abs(Double($1.0.predicted[0]) - $1.1.properties[0]) } / Double(data.test.count)
        let printed = Double(rows.first { $0.first == "test" }?[2] ?? "") ?? .nan
        #expect(abs(printed - mae) <= 1e-4 * mae, "printed \(printed), recomputed \(mae)")
        // Wrong uses.
        let pair = try TrainingTests.writeDataset(dir, name: "toy_pair_eV", outputs: 2)
        r = try InterruptionTests.run(["train", pair, "-o", dir.file("x"), "--readout", "dipole"] + chem)
        #expect(r.status != 0 && r.stderr.contains("one value"), "\(r.stderr)")
        r = try InterruptionTests.run(["train", mu, "-o", dir.file("y"), "--readout", "dipole", "--element-baseline"] + chem)
        #expect(r.status != 0 && r.stderr.contains("element baseline"), "\(r.stderr)")
        r = try InterruptionTests.run(["train", mu, "-o", dir.file("z"), "--readout", "quadrupole"] + chem)
        #expect(r.status != 0 && r.stderr.contains("sum, mean or dipole"), "\(r.stderr)")
    }
}

