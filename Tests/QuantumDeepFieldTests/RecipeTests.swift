import Foundation
import Testing
import QuantumDeepField
import QDFFormats

/// The training options beyond the reference recipe (docs/training.md).
@Suite("Training recipe options")
struct RecipeTests {
    // MARK: element baseline

    @Test("The element baseline recovers known per-element energies exactly")
    func baselineRecoversElementEnergies() throws {
        let known: [Int: [Double]] = [1: [-13.6, 0.5], 6: [-1029.8, 2], 7: [-1485.3, -1], 8: [-2042.6, 3], 9: [-2713.5, 0.25]]
        var rng = RandomGenerator(seed: 5)
        let molecules = (0..<60).map { n -> Molecule in
            let zs = (0..<(2 + rng.nextIndex(12))).map { _ in [1, 1, 6, 7, 8, 9][rng.nextIndex(6)] }
            let e = (0..<2).map { q in zs.reduce(0.0) { $0 + known[$1]![q] } }
            return Molecule(id: "m\(n)", atomicNumbers: zs, positions: zs.indices.map { SIMD3(Double($0), 0, 0) }, properties: e)
        }
        let b = try ElementBaseline.fit(molecules, outputs: 2)
        for (z, v) in known { for q in 0..<2 { #expect(abs(b.values[z]![q] - v[q]) < 1e-6 * abs(v[q]) + 1e-9, "Z=\(z)") } }
        // The metadata form round-trips exactly.
        #expect(try ElementBaseline(json: b.json, outputs: 2) == b)
        #expect(throws: QDFError.self) { _ = try ElementBaseline(json: "{\"6\": [1]}", outputs: 2) }
    }

    @Test("A model with a baseline predicts the network's value plus Σ b_Z, and keeps it in its file")
    func baselineInPredictions() throws {
        let (plain, geoms) = try GradientTests.model(.sum, layers: 1)
        let baseline = ElementBaseline(values: [1: [-0.5, 1], 6: [-38, 2], 7: [-54.5, 3], 8: [-75, 4], 9: [-99.7, 5]], outputs: 2)
        var md = plain.metadata
        md["element_baseline"] = baseline.json
        let with = try QDFModel(hyper: plain.hyper, dictionary: plain.dictionary, parameters: plain.parameters, metadata: md)
        let dir = try TemporaryDirectory()
        try with.save(path: dir.file("m.safetensors"))
        let loaded = try QDFModel.load(path: dir.file("m.safetensors"))
        #expect(loaded.architecture.elementBaseline == baseline)
        let mols = GradientTests.molecules()
        let a = try Predictor(model: plain).predict(mols), b = try Predictor(model: loaded).predict(mols)
        for (m, (x, y)) in zip(mols, zip(a, b)) {
            let offset = baseline.offset(m)
            for q in 0..<2 { #expect(abs(Double(y.predicted[q] - x.predicted[q]) - offset[q]) < 1e-4 * max(1, abs(offset[q]))) }
        }
        // The chunked path adds it too.
        let chunked = try LargeMolecule.predict(mols[0], model: loaded, chunkRows: 7)
        for q in 0..<2 { #expect(abs(chunked[q] - b[0].predicted[q]) < 1e-4 * max(1, abs(b[0].predicted[q]))) }
        _ = geoms
    }

    // MARK: EMA

    @Test("The moving average equals d·avg + (1 − d)·θ over three steps")
    func movingAverage() {
        let d = 0.9
        var avg = ParameterAverage(decay: d, initial: [1, -2, 0.5])
        let steps: [[Float]] = [[2, 0, 1], [3, -1, -1], [0, 4, 2]]
        var expected: [Float] = [1, -2, 0.5]
        for s in steps {
            avg.update(with: s)
            expected = zip(expected, s).map { Float(d) * $0 + (1 - Float(d)) * $1 }
        }
        #expect(avg.values == expected)
        // By hand for the first value: 0.9³·1 + 0.9²·0.1·2 + 0.9·0.1·3 + 0.1·0 = 1.161.
        #expect(abs(avg.values[0] - 1.161) < 1e-6)
    }

    // MARK: schedules

    @Test("Schedules give the documented rate at chosen points")
    func schedules() {
        var o = TrainingOptions()
        o.learningRate = 1e-3; o.lrDecay = 0.5; o.stepSize = 10; o.epochs = 100
        func rate(_ e: Double, _ s: Double = 0) -> Double { o.learningRate(at: TrainingPosition(epochs: e, seconds: s), batchesPerEpoch: 50) }
        // StepLR: constant within a step, halved at each multiple of step_size.
        #expect(rate(0) == 1e-3 && rate(9.98) == 1e-3 && rate(10) == 5e-4 && rate(25.5) == 2.5e-4)
        // Cosine with 5 warm-up epochs to lrMin 1e-5.
        o.schedule = .cosine; o.warmupEpochs = 5; o.lrMin = 1e-5
        #expect(abs(rate(0) - 1e-3 * (1.0 / 50) / 5) < 1e-15)           // the first batch: one batch of warm-up
        #expect(abs(rate(2.48) - 1e-3 * 2.5 / 5) < 1e-15)
        #expect(abs(rate(5) - 1e-3) < 1e-15)                             // warm-up done: the peak
        #expect(abs(rate(52.5) - (1e-5 + (1e-3 - 1e-5) / 2)) < 1e-12)   // half-way through the decay
        #expect(abs(rate(100) - 1e-5) < 1e-15)                           // the end
        // Sized to a time budget: the fraction of the budget replaces the epochs'.
        o.timeBudget = 3600
        #expect(abs(rate(50, 1800) - (1e-5 + (1e-3 - 1e-5) / 2)) < 1e-12)
        #expect(abs(rate(50, 3600) - 1e-5) < 1e-15)
        // A warm-up also applies to StepLR.
        o.schedule = .step; o.timeBudget = nil
        #expect(abs(rate(1) - 1e-3 * (1 + 1.0 / 50) / 5) < 1e-15)
    }

    // MARK: losses

    @Test("L1 and Huber: value and derivative agree with central differences")
    func lossDerivatives() {
        for loss in [EnergyLoss.l1, .huber(delta: 0.5), .huber(delta: 1), .mse] {
            for r: Float in [-2.3, -0.7, -0.3, 0.2, 0.45, 0.9, 1.7] {
                let h: Float = 1e-3
                let numeric = (loss.valueAndDerivative(r + h).0 - loss.valueAndDerivative(r - h).0) / Double(2 * h)
                let analytic = Double(loss.valueAndDerivative(r).1)
                #expect(abs(numeric - analytic) < 2e-3 * max(1, abs(analytic)), "\(loss) at \(r): \(analytic) vs \(numeric)")
            }
        }
        #expect(EnergyLoss("huber:0.25") == .huber(delta: 0.25) && EnergyLoss("huber") == .huber(delta: 1))
        #expect(EnergyLoss("huber:-1") == nil && EnergyLoss("l2") == nil)
        // Huber is quadratic inside δ and linear beyond, continuous at δ.
        let hb = EnergyLoss.huber(delta: 0.5)
        #expect(abs(hb.valueAndDerivative(0.4999).0 - hb.valueAndDerivative(0.5001).0) < 1e-4)
    }

    @Test("The engine's Loss_E with L1 is the mean |Ê − E| and its gradient matches finite differences")
    func engineL1Gradient() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        let engine = Engine(model: model)
        var grad = [Float](repeating: 0, count: model.layout.totalCount)
        let loss = engine.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &grad, loss: .l1)
        let predictions = engine.predict(geoms, parameters: model.parameters)
        var total = 0.0
        for (p, g) in zip(predictions, geoms) { for q in 0..<2 { total += Double(abs(p[q] - g.properties[q])) } }
        let mean = total / Double(geoms.count * 2)
        #expect(abs(loss - mean) < 1e-6 * mean)
        // Central differences (Float32 model, so a loose tolerance) on a few W_property entries.
        let e = model.layout["W_property.weight"]!
        for i in [e.offset, e.offset + 3, e.offset + 9] {
            var plus = model.parameters, minus = model.parameters
            let h: Float = 1e-2
            plus[i] += h; minus[i] -= h
            var scratch = grad
            let lp = engine.energyLossAndGradient(geoms, parameters: plus, gradient: &scratch, loss: .l1)
            let lm = engine.energyLossAndGradient(geoms, parameters: minus, gradient: &scratch, loss: .l1)
            let numeric = (lp - lm) / Double(2 * h)
            #expect(abs(numeric - Double(grad[i])) < 2e-2 * max(1e-2, abs(Double(grad[i]))), "W_property[\(i)]: \(grad[i]) vs \(numeric)")
        }
    }

    // MARK: clipping and the Loss_V weight

    @Test("Gradient clipping shrinks Adam's first step; a Loss_V weight of 0 freezes the HK map")
    func clippingAndPotentialWeight() throws {
        let (model, geoms) = try GradientTests.model(.sum, layers: 2)
        func firstStep(_ configure: (TrainingStep) -> Void) -> [Float] {
            var m = model
            let stepper = TrainingStep(architecture: model.architecture, workers: 1)
            configure(stepper)
            _ = stepper.step(geoms, parameters: &m.parameters, adam: Adam(layout: model.layout, learningRate: 1e-2), hkMap: true)
            return zip(m.parameters, model.parameters).map { $0 - $1 }
        }
        let plain = firstStep { _ in }, clipped = firstStep { $0.clipNorm = 1e-10 }
        #expect(firstStep { $0.clipNorm = 1e30 } == plain)
        let big = plain.map(abs).max()!, small = clipped.map(abs).max()!
        #expect(big > 5e-3 && small < 0.2 * big, "unclipped step \(big), clipped \(small)")
        let frozen = firstStep { $0.potentialWeight = 0 }
        for e in model.layout.entries where e.name.hasPrefix("W_HK") || e.name.hasPrefix("W_potential") || e.name.hasPrefix("W_density") {
            #expect(e.range.allSatisfy { frozen[$0] == 0 }, "\(e.name) moved with a zero Loss_V weight")
        }
    }

    // MARK: the whole trainer

    static func allOptions(epochs: Int) throws -> TrainingOptions {
        var o = try TrainingTests.smallOptions(epochs: epochs)
        o.schedule = .cosine; o.warmupEpochs = 0.5; o.lrMin = 1e-5
        o.ema = 0.9; o.energyLoss = .huber(delta: 0.5); o.evalEvery = 2
        o.elementBaseline = true; o.clipNorm = 50; o.potentialWeight = 0.5
        return o
    }

    @Test("Every option on: resume stays bit-identical, evaluations every k epochs, the EMA model is written")
    func resumeWithEveryOption() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let opts = try Self.allOptions(epochs: 5)
        let full = try Trainer(dataset: data, options: opts, runDirectory: dir.file("full"))
        #expect(try full.train() == .finished)
        #expect(full.records.map(\.epoch) == [1, 3, 4])   // every 2nd epoch, and the last
        // Stop in the middle of epoch 2, resume, finish.
        let b = try Trainer(dataset: data, options: opts, runDirectory: dir.file("b"))
        var batches = 0
        let out = try b.train(shouldStop: { batches == 15 }) { if case .batch = $0 { batches += 1 } }
        #expect(out == .interrupted(epoch: 2, batch: 3))
        let b2 = try Trainer.resume(runDirectory: dir.file("b"))
        #expect(b2.options == opts)
        #expect(try b2.train() == .finished)
        #expect(b2.model.parameters == full.model.parameters)
        #expect(b2.average == full.average)
        #expect(b2.records.map(\.maeTest) == full.records.map(\.maeTest))
        // The written model is the moving average, with the baseline, and reproduces the MAE.
        let written = try QDFModel.load(path: dir.file("b/model.safetensors"))
        #expect(written.parameters == full.average!.values)
        #expect(written.architecture.elementBaseline != nil && written.metadata["ema"] == "0.9")
        let p = try Predictor(model: written).predict(data.test)
        let mae = zip(p, data.test).map { abs(Double($0.predicted[0]) - $1.properties[0]) }.reduce(0, +) / Double(p.count)
        #expect(abs(mae - full.records.last!.maeTest) < 1e-5)
    }

    @Test("A time budget ends the run with its final evaluation and model")
    func timeBudget() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        var o = try TrainingTests.smallOptions(epochs: 1000)
        o.timeBudget = 1e-6; o.schedule = .cosine
        let t = try Trainer(dataset: data, options: o, runDirectory: dir.file("run"))
        var batches = 0
        let outcome = try t.train(report: { if case .batch = $0 { batches += 1 } })
        #expect(outcome == .finished)
        #expect(batches == 1 && t.records.count == 1 && t.records[0].epoch == 0)
        #expect(FileManager.default.fileExists(atPath: dir.file("run/model.safetensors")))
        // Resuming a run whose budget is spent does nothing more.
        let again = try Trainer.resume(runDirectory: dir.file("run"))
        #expect(try again.train() == .finished && again.model.parameters == t.model.parameters)
    }

    @Test("qdf train --recipe fast sets v2's options; explicit options override it",
          .enabled(if: InterruptionTests.available, "the qdf executable was not built beside the tests"))
    func fastRecipe() throws {
        let dir = try TemporaryDirectory()
        let data = try TrainingTests.writeDataset(dir)
        let small = ["--epochs", "2", "--dim", "24", "--hidden-hk", "16", "--layer-functional", "2", "--layer-hk", "2",
                     "--batch-size", "4", "--allow-open-shell", "--allow-geometry"]
        let r = try InterruptionTests.run(["train", data, "-o", dir.file("fast"), "--recipe", "fast"] + small)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("recipe fast"))
        let fast = try QDFModel.load(path: dir.file("fast/model.safetensors")).metadata
        #expect(fast["schedule"] == "cosine" && fast["lr"] == "0.0003" && fast["lr_min"] == "1e-05")
        #expect(fast["warmup_epochs"] == "1.0" && fast["ema"] == "0.9995" && fast["eval_every"] == "5")
        #expect(fast["fit_element_baseline"] == "true" && fast["time_budget"] == "9000.0")
        let o = try InterruptionTests.run(["train", data, "-o", dir.file("own"), "--recipe", "fast", "--lr", "1e-3", "--ema", "0",
                                           "--no-element-baseline", "--time-budget", "none", "--eval-every", "1"] + small)
        #expect(o.status == 0, "\(o.stderr)")
        let own = try QDFModel.load(path: dir.file("own/model.safetensors")).metadata
        #expect(own["schedule"] == "cosine" && own["lr"] == "0.001" && own["ema"] == "none")
        #expect(own["fit_element_baseline"] == "false" && own["time_budget"] == "none" && own["eval_every"] == "1")
        let plain = try InterruptionTests.run(["train", data, "-o", dir.file("plain")] + small)
        #expect(plain.status == 0)
        let ref = try QDFModel.load(path: dir.file("plain/model.safetensors")).metadata
        #expect(ref["schedule"] == "step" && ref["lr"] == "0.0001" && ref["ema"] == "none" && ref["fit_element_baseline"] == "false")
    }

    @Test("The recipes are library values: reference is the plain defaults, fast is bundled model v2's")
    func recipeValues() throws {
        #expect(TrainingOptions.reference == TrainingOptions())
        #expect(TrainingRecipe.reference.options == .reference && TrainingRecipe.fast.options == .fast)
        let f = TrainingOptions.fast
        #expect(f.learningRate == 3e-4 && f.schedule == .cosine && f.warmupEpochs == 1 && f.lrMin == 1e-5)
        #expect(f.timeBudget == 9000 && f.ema == 0.9995 && f.evalEvery == 5 && f.elementBaseline)
        #expect(f.hyper.frame == .canonical && f.budgetClock == .wall)
        // Everything else is the reference's.
        var back = f
        back.hyper.frame = .input
        back.learningRate = 1e-4; back.schedule = .step; back.warmupEpochs = 0; back.lrMin = 0
        back.timeBudget = nil; back.ema = nil; back.evalEvery = 1; back.elementBaseline = false
        #expect(back == .reference)
        try f.validate()
        try TrainingOptions.reference.validate()
        let h = Hyperparameters.reference
        #expect(h.basisSet.name == "6-31G" && h.radius == 0.75 && h.gridInterval == 0.3)
        #expect(h.dim == 250 && h.layerFunctional == 3 && h.hiddenHK == 250 && h.layerHK == 3)
    }
}
