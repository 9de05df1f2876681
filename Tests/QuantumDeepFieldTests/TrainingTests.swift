import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

@Suite("Training")
struct TrainingTests {
    /// A small synthetic dataset folder (train/val/test) with molecules whose "energy" is a
    /// simple function of composition, so a model can learn it.
    static func writeDataset(_ dir: TemporaryDirectory, name: String = "toy_energy_eV", outputs: Int = 1) throws -> String {
        let folder = dir.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var rng = RandomGenerator(seed: 99)
        for (split, count) in [("train", 24), ("val", 6), ("test", 6)] {
            var text = ""
            for n in 0..<count {
                let heavy = 1 + rng.nextIndex(3)
                var lines = [String](), zs = [Int]()
                for a in 0..<heavy {
                    let z = [6, 7, 8][rng.nextIndex(3)]
                    zs.append(z)
                    lines.append("\(Element.symbol(z)) \(1.4 * Double(a)) \(0.1 * rng.nextUniform(-1, 1)) 0.0")
                }
                for a in 0..<(2 * heavy) {
                    zs.append(1)
                    lines.append("H \(1.4 * Double(a / 2)) \(a % 2 == 0 ? 1.05 : -1.05) \(0.2 * rng.nextUniform(-1, 1))")
                }
                let e = -4.0 * Double(heavy) - 2.2 * Double(2 * heavy) + 0.1 * rng.nextUniform(-1, 1)
                let props = outputs == 1 ? "\(e)" : "\(e / 10) \(0.5 + 0.1 * Double(heavy))"
                text += "\(split)_\(n)\n" + lines.joined(separator: "\n") + "\n\(props)\n\n"
            }
            try text.write(toFile: folder + "/\(split).txt", atomically: true, encoding: .utf8)
        }
        return folder
    }

    static func smallOptions(epochs: Int) throws -> TrainingOptions {
        var o = TrainingOptions()
        o.hyper = Hyperparameters(basisSet: try BasisSet("6-31G"), dim: 24, layerFunctional: 2, hiddenHK: 16, layerHK: 2)
        o.epochs = epochs
        o.batchSize = 4
        o.learningRate = 1e-3
        o.stepSize = 3
        return o
    }

    @Test("A tiny run learns: loss falls, files are written, the model predicts")
    func tinyRun() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        let trainer = try Trainer(dataset: data, options: try Self.smallOptions(epochs: 6), runDirectory: dir.file("run"))
        let outcome = try trainer.train()
        #expect(outcome == .finished)
        let r = trainer.records
        #expect(r.count == 6)
        #expect(r.last!.lossE < r.first!.lossE)
        #expect(r.last!.maeVal < r.first!.maeVal)
        #expect(r.allSatisfy { $0.lossV > 0 })
        let curve = try readTSV(dir.file("run/learning_curve.tsv"))
        #expect(curve.header == ["Epoch", "Time(sec)", "Loss_E", "Loss_V", "MAE_val(eV)", "MAE_test(eV)"])
        #expect(curve.rows.count == 6)
        let preds = try readTSV(dir.file("run/predictions_test.tsv"))
        #expect(preds.header == ["ID", "Correct", "Predict", "Error"] && preds.rows.count == 6)
        // The saved model reproduces the last epoch's test MAE.
        let model = try QDFModel.load(path: dir.file("run/model.safetensors"))
        #expect(model.metadata["dataset"] == "toy_energy_eV" && model.metadata["unit"] == "eV")
        let p = try Predictor(model: model).predict(data.test)
        let mae = zip(p, data.test).map { abs(Double($0.predicted[0]) - $1.properties[0]) }.reduce(0, +) / Double(p.count)
        #expect(abs(mae - r.last!.maeTest) < 1e-5)
        // Learning rate decays every step_size epochs.
        #expect(trainer.learningRate(epoch: 2) == 1e-3 && abs(trainer.learningRate(epoch: 3) - 5e-4) < 1e-10)
    }

    @Test("A trainer in memory writes no file and trains as one with a run folder does, bit for bit")
    func inMemory() throws {
        let dir = try TemporaryDirectory()
        let loaded = try Dataset.load(directory: try Self.writeDataset(dir))
        let data = Dataset(name: loaded.name, train: loaded.train, val: loaded.val, test: loaded.test)
        let o = try Self.smallOptions(epochs: 3)
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let memory = try Trainer(dataset: data, options: o)
        #expect(memory.run == nil)
        #expect(try memory.train() == .finished)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == before)
        #expect(memory.records.count == 3 && memory.records.last!.maeVal < memory.records.first!.maeVal)
        let folder = try Trainer(dataset: loaded, options: o, runDirectory: dir.file("run"))
        #expect(try folder.train() == .finished)
        #expect(memory.model.parameters == folder.model.parameters)
        #expect(memory.records.map(\.maeTest) == folder.records.map(\.maeTest))
        #expect(memory.evaluationModel.metadata["dataset"] == "toy_energy_eV")
    }

    @Test("A diverging trainer in memory says that nothing was kept; one with a run folder names its checkpoint")
    func divergenceMessage() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        var o = try Self.smallOptions(epochs: 2)
        o.learningRate = 1e6
        func message(_ t: Trainer) -> String {
            do { _ = try t.train(); return "" } catch let e as QDFError { return e.message } catch { return "\(error)" }
        }
        let memory = message(try Trainer(dataset: data, options: o))
        #expect(memory.contains("diverged") && memory.contains("no longer usable") && !memory.contains("checkpoint in the run folder"), "\(memory)")
        let folder = message(try Trainer(dataset: data, options: o, runDirectory: dir.file("run")))
        #expect(folder.contains("diverged") && folder.contains("the last good checkpoint in the run folder is kept"), "\(folder)")
    }

    @Test("Resume after epoch k, and after an interruption mid-epoch, gives the same parameters bit for bit")
    func resume() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        let opts = try Self.smallOptions(epochs: 4)
        let full = try Trainer(dataset: data, options: opts, runDirectory: dir.file("full"))
        _ = try full.train()

        // Stop after epoch 2 (shouldStop checked after each epoch's last batch).
        let a = try Trainer(dataset: data, options: opts, runDirectory: dir.file("a"))
        var epochsDone = 0
        let out1 = try a.train(shouldStop: { epochsDone >= 2 }) { if case .epoch = $0 { epochsDone += 1 } }
        #expect(out1 == .interrupted(epoch: 2, batch: 0))
        // A kill after epoch 2's curve row was written and before its checkpoint: the row
        // is on disk, the checkpoint still says epoch 2. Resume redoes the epoch once.
        let curveA = dir.file("a/learning_curve.tsv")
        try (try String(contentsOfFile: curveA, encoding: .utf8) + "2\t1.0\t9.0\t9.0\t9.0\t9.0\n")
            .write(toFile: curveA, atomically: true, encoding: .utf8)
        let a2 = try Trainer.resume(runDirectory: dir.file("a"))
        #expect(a2.records.map(\.epoch) == [0, 1])
        #expect(try a2.train() == .finished)
        #expect(a2.model.parameters == full.model.parameters)
        #expect(a2.records.map(\.lossE) == full.records.map(\.lossE))
        #expect(try readTSV(curveA).rows.count == 4)

        // Stop in the middle of epoch 1 (after its 3rd batch), resume, then finish.
        let b = try Trainer(dataset: data, options: opts, runDirectory: dir.file("b"))
        var batches = 0
        let out2 = try b.train(shouldStop: { batches == 9 }) { if case .batch = $0 { batches += 1 } }
        #expect(out2 == .interrupted(epoch: 1, batch: 3))
        let b2 = try Trainer.resume(runDirectory: dir.file("b"))
        #expect(try b2.train() == .finished)
        #expect(b2.model.parameters == full.model.parameters)
        #expect(b2.records.map(\.maeTest) == full.records.map(\.maeTest))
        let curve = try readTSV(dir.file("b/learning_curve.tsv"))
        #expect(curve.rows.count == 4)
    }

    @Test("A sampled V step (--hk-grid-fraction) resumes bit for bit, and moves the parameters otherwise than the full one")
    func sampledPotentialResume() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        var opts = try Self.smallOptions(epochs: 3)
        opts.potentialGridFraction = 0.5
        let full = try Trainer(dataset: data, options: opts, runDirectory: dir.file("full"))
        _ = try full.train()
        let a = try Trainer(dataset: data, options: opts, runDirectory: dir.file("a"))
        var batches = 0
        #expect(try a.train(shouldStop: { batches == 7 }) { if case .batch = $0 { batches += 1 } } != .finished)
        let a2 = try Trainer.resume(runDirectory: dir.file("a"))
        #expect(a2.options.potentialGridFraction == 0.5)
        #expect(try a2.train() == .finished)
        #expect(a2.model.parameters == full.model.parameters)
        var plainOptions = opts
        plainOptions.potentialGridFraction = 1
        let plain = try Trainer(dataset: data, options: plainOptions)
        _ = try plain.train()
        #expect(plain.model.parameters != full.model.parameters)
        var bad = opts
        bad.hkMap = false
        #expect(throws: QDFError.self) { try bad.validate() }
        bad = opts
        bad.potentialGridFraction = 0
        #expect(throws: QDFError.self) { try bad.validate() }
    }

    @Test("A CPU-time budget ends the run once the process has used it, and a resumed run keeps that clock")
    func cpuBudget() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        var opts = try Self.smallOptions(epochs: 10_000)
        opts.schedule = .cosine
        opts.timeBudget = 1.5
        opts.budgetClock = .cpu
        let cpuStart = processCPUSeconds()
        let t = try Trainer(dataset: data, options: opts, runDirectory: dir.file("run"))
        #expect(try t.train() == .finished)
        let used = processCPUSeconds() - cpuStart
        let last = t.records.last!
        // The curve counts CPU seconds: at least the budget, and no more than this process used.
        #expect(last.seconds >= 1.5 && last.seconds <= used, "curve \(last.seconds) s, process \(used) s")
        #expect(last.epoch < 10_000 - 1)
        let back = try Trainer.resume(runDirectory: dir.file("run"))
        #expect(back.options.budgetClock == .cpu && back.options.timeBudget == 1.5)
    }

    @Test("A checkpoint keeps the CPU kinds a run trained on; resuming on another kind warns and adds it")
    func cpuKinds() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        var opts = try Self.smallOptions(epochs: 4)
        opts.timeBudget = 3600
        opts.budgetClock = .cpu
        let t = try Trainer(dataset: data, options: opts, runDirectory: dir.file("run"))
        var epochs = 0
        _ = try t.train(shouldStop: { epochs >= 1 }) { if case .epoch = $0 { epochs += 1 } }
        let here = t.cpuKinds
        #expect(here.count == 1 && !here[0].isEmpty)
        let same = try Trainer.resume(runDirectory: dir.file("run"), cpuKind: here[0])
        #expect(same.resumeWarning == nil && same.cpuKinds == here)

        let otherKind = "TestVendor, Test CPU 9000, family 99, model 1"
        let other = try Trainer.resume(runDirectory: dir.file("run"), cpuKind: otherKind)
        #expect(other.cpuKinds == here + [otherKind])
        let warning = try #require(other.resumeWarning)
        #expect(warning.contains(here[0]) && warning.contains(otherKind) && warning.contains("3600 s of CPU time"), "\(warning)")
        // Its next checkpoint keeps both kinds: back on the first, nothing new to warn of.
        epochs = 0
        _ = try other.train(shouldStop: { epochs >= 1 }) { if case .epoch = $0 { epochs += 1 } }
        let back = try Trainer.resume(runDirectory: dir.file("run"), cpuKind: here[0])
        #expect(back.cpuKinds == here + [otherKind] && back.resumeWarning == nil)
        // Without a time budget the warning speaks of the learning curve's time column.
        #expect(Trainer.otherCPUWarning(trainedOn: here, now: otherKind, options: try Self.smallOptions(epochs: 1)).contains("time column"))
    }

    @Test("--no-hk-map trains on E alone: HK parameters never change")
    func noHKMap() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        var o = try Self.smallOptions(epochs: 2)
        o.hkMap = false
        let t = try Trainer(dataset: data, options: o, runDirectory: dir.file("run"))
        let before = t.model.parameters
        _ = try t.train()
        for e in t.model.layout.entries {
            let changed = e.range.contains { t.model.parameters[$0] != before[$0] }
            let isHK = e.name.hasPrefix("W_density") || e.name.hasPrefix("W_HK") || e.name.hasPrefix("W_potential")
            #expect(changed == !isHK, "\(e.name) changed: \(changed)")
        }
        #expect(t.records.allSatisfy { $0.lossV == 0 })
    }

    @Test("Several properties at once: HOMO and LUMO with mean readout",
          .enabled(if: Shared.available, Shared.skipMessage))
    func homoLumo() throws {
        let data = try Dataset.load(directory: Shared.dataset("QM9under7atoms_homolumo_eV"))
        #expect(data.outputs == 2)
        var o = try Self.smallOptions(epochs: 5)
        o.hyper.operation = .mean
        let dir = try TemporaryDirectory()
        let t = try Trainer(dataset: data, options: o, runDirectory: dir.file("run"))
        _ = try t.train()
        #expect(t.model.hyper.outputs == 2)
        #expect(t.records.last!.maeVal < t.records.first!.maeVal)
        let preds = try readTSV(dir.file("run/predictions_test.tsv"))
        #expect(preds.header == ["ID", "Correct_0", "Correct_1", "Predict_0", "Predict_1", "Error_0", "Error_1"])
    }

    @Test("QM9under7atoms: a few epochs with the reference architecture",
          .enabled(if: Shared.available, Shared.skipMessage))
    func qm9Tiny() throws {
        let data = try Dataset.load(directory: Shared.dataset("QM9under7atoms_atomizationenergy_eV"))
        var o = TrainingOptions()
        o.epochs = 3
        o.learningRate = 1e-3
        let dir = try TemporaryDirectory()
        let t = try Trainer(dataset: data, options: o, runDirectory: dir.file("run"))
        _ = try t.train()
        #expect(t.model.dictionary.count == 60 || t.model.dictionary.count > 0)
        #expect(t.records.last!.lossE < t.records.first!.lossE)
    }

    @Test("A run folder that already holds a run is refused; a missing dataset names the folder")
    func runFolderErrors() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try Self.writeDataset(dir))
        let t = try Trainer(dataset: data, options: try Self.smallOptions(epochs: 1), runDirectory: dir.file("run"))
        _ = try t.train()
        #expect(throws: QDFError.self) { try Trainer(dataset: data, options: try Self.smallOptions(epochs: 1), runDirectory: dir.file("run")) }
        #expect(throws: QDFError.self) { try Dataset.load(directory: dir.file("nope")) }
        #expect(throws: QDFError.self) { try Trainer.resume(runDirectory: dir.file("nope")) }
    }
}
