import Foundation
import Testing
import QuantumDeepField

// Fine-tuning (docs/training.md, "Fine-tuning"): the starting model, frozen parts, the
// file fingerprint.
@Suite("Fine-tuning")
struct FineTuningTests {
    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256Vectors() {
        #expect(sha256Hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(sha256Hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(sha256Hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(sha256Hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// A small architecture with every optional stage on (environment, potential input).
    static func hyper() throws -> Hyperparameters {
        Hyperparameters(basisSet: try BasisSet("6-31G"), dim: 12, layerFunctional: 2, hiddenHK: 8, layerHK: 1,
                        environment: EnvironmentShape(layers: 1, features: 6, gaussians: 5, cutoff: 3),
                        potentialFeatures: 4)
    }

    @Test("A frozen part's gradient is not computed; the others are the full gradient's, bit for bit",
          arguments: [FrozenParts.orbitals, .functional, [.orbitals, .functional]])
    func frozenBackward(frozen: FrozenParts) throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let h = try Self.hyper()
        var model = try QDFModel(hyper: h, dictionary: data.orbitalDictionary(basis: h.basisSet), seed: 5)
        // A trained-looking model: the environment's output and the potential weight not zero.
        for i in model.parameters.indices { model.parameters[i] += 0.05 * Float(sin(Double(i))) }
        let geoms = try data.train.prefix(3).map { try model.architecture.geometry($0, withPotential: true) }
        for policy in [Engine.Policy.always, .never] {
            let full = Engine(architecture: model.architecture), part = Engine(architecture: model.architecture)
            full.firstLayerThroughBasis = policy; part.firstLayerThroughBasis = policy
            part.frozen = frozen
            var g0 = [Float](repeating: 0, count: model.layout.totalCount), g1 = g0
            let l0 = full.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &g0)
            let l1 = part.energyLossAndGradient(geoms, parameters: model.parameters, gradient: &g1)
            #expect(l0 == l1)
            for e in model.layout.entries {
                let a = Array(g0[e.range]), b = Array(g1[e.range])
                if frozen.freezes(tensor: e.name) {
                    #expect(b.allSatisfy { $0 == 0 }, "\(e.name) (\(policy)): frozen, but has a gradient")
                } else {
                    #expect(a == b, "\(e.name) (\(policy)): differs from the full gradient")
                }
            }
            // The full gradient reaches every E tensor (so the test above can fail).
            for name in ["coefficient.weight", "W_functional.0.weight", "W_functional.1.bias", "W_functional_potential.weight",
                         "environment.embedding.weight", "W_property.weight"] {
                #expect(g0[model.layout[name]!.range].contains { $0 != 0 }, "\(name) has no gradient")
            }
        }
    }

    @Test("The element-count baseline with a constant fits an exact linear law exactly")
    func countBaseline() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        func law(_ m: Molecule) -> Double {
            let c = m.atomicNumbers
            return 2 * Double(c.filter { $0 == 6 }.count) + 0.5 * Double(c.filter { $0 == 1 }.count)
                - 1.25 * Double(c.filter { $0 == 8 }.count) + 3
        }
        let ms = data.train.map { m in var m = m; m.properties = [law(m)]; return m }
        let f = try ElementBaseline.fitWithConstant(ms, outputs: 1)
        for m in data.test { #expect(abs(f(m)[0] - law(m)) < 1e-6, "\(m.id)") }
    }

    @Test("Parts parse by name; an unknown one is refused")
    func parsing() throws {
        #expect(try FrozenParts(parsing: "orbitals") == .orbitals)
        #expect(try FrozenParts(parsing: "functional, orbitals") == [.orbitals, .functional])
        #expect(try FrozenParts(parsing: "none").isEmpty)
        #expect(FrozenParts([.orbitals, .functional]).description == "orbitals,functional")
        #expect(throws: QDFError.self) { try FrozenParts(parsing: "head") }
    }

    /// A trained source model whose dictionary lacks nitrogen (its training molecules have none).
    static func source(_ data: Dataset, hyper: Hyperparameters) throws -> QDFModel {
        var dict = OrbitalDictionary()
        for m in data.train where !m.atomicNumbers.contains(7) { dict.add(m, basis: hyper.basisSet) }
        var h = hyper
        h.outputs = 1
        var m = try QDFModel(hyper: h, dictionary: dict, metadata: ["model_name": "source v1", "dataset": "other"], seed: 11)
        // Not a fresh model: every value moved, so a carried-over value is recognisable.
        for i in m.parameters.indices { m.parameters[i] += 0.001 * Float(i % 7) }
        return m
    }

    @Test("The start carries every parameter but the head over exactly, by orbital name, and extends the dictionary")
    func start() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "toy_gap_eV", outputs: 2))
        let src = try Self.source(data, hyper: try Self.hyper())
        #expect(src.dictionary["N1s"] == nil)
        let s = try FineTuning.start(from: src, sourceName: "src.safetensors", sourceSHA256: "ab12", dataset: data,
                                     operation: .mean, elementBaseline: true, seed: 3)
        let m = s.model
        #expect(m.hyper.outputs == 2 && m.hyper.operation == .mean && m.hyper.environment == src.hyper.environment)
        #expect(s.addedOrbitals.allSatisfy { $0.hasPrefix("N") } && !s.addedOrbitals.isEmpty)
        #expect(m.dictionary.count == src.dictionary.count + s.addedOrbitals.count)
        #expect(m.metadata["init_from"] == "src.safetensors" && m.metadata["init_from_sha256"] == "ab12")
        #expect(m.metadata["init_from_model_name"] == "source v1")
        #expect(m.metadata["init_from_added_orbitals"] == s.addedOrbitals.joined(separator: ","))
        #expect(m.metadata["element_baseline"] != nil && m.metadata["dataset"] == nil)
        for e in m.layout.entries {
            let se = src.layout[e.name]!
            if e.name.hasPrefix("W_property") { #expect(e.shape[0] == 2 && se.shape[0] == 1); continue }
            if FineTuning.orbitalTypeTensors.contains(e.name) {
                let row = e.shape[1]
                for name in src.dictionary.names {
                    let i = m.dictionary[name]!, j = src.dictionary[name]!
                    #expect(Array(m.parameters[(e.offset + i * row)..<(e.offset + (i + 1) * row)])
                            == Array(src.parameters[(se.offset + j * row)..<(se.offset + (j + 1) * row)]), "\(e.name) \(name)")
                }
            } else {
                #expect(Array(m.parameters[e.range]) == Array(src.parameters[se.range]), "\(e.name)")
            }
        }
        // The head: fitted by least squares (better than the fresh head it replaced), or random.
        let fit = try #require(s.headFit)
        #expect(m.metadata["init_head"] == "lsq" && zip(fit.maeAfter, fit.maeBefore).allSatisfy { $0 < $1 })
        let r = try FineTuning.start(from: src, sourceName: "src.safetensors", sourceSHA256: "ab12", dataset: data,
                                     operation: .mean, elementBaseline: true, seed: 3, head: .random)
        #expect(r.headFit == nil && r.model.metadata["init_head"] == "random")
        #expect(r.model.tensor("W_property.weight") != m.tensor("W_property.weight"))
        #expect(r.model.tensor("W_functional.0.weight") == m.tensor("W_functional.0.weight"))
        // The added rows are a fresh model's: ζ = 1.
        let z = m.layout["zeta.weight"]!
        for name in s.addedOrbitals { #expect(m.parameters[z.offset + m.dictionary[name]!] == 1) }
    }

    /// Trains `epochs` from the start of `src` with `freeze`; returns the trainer.
    static func fineTune(_ data: Dataset, _ src: QDFModel, freeze: FrozenParts, epochs: Int, dir: String,
                         stopAfterBatches: Int? = nil) throws -> (Trainer, TrainingOutcome) {
        var o = try TrainingTests.smallOptions(epochs: epochs)
        o.freeze = freeze
        o.ema = 0.9
        let s = try FineTuning.start(from: src, sourceName: "src", sourceSHA256: "00", dataset: data, operation: .sum,
                                     elementBaseline: true, seed: o.seed)
        let t = try Trainer(dataset: data, options: o, runDirectory: dir, workers: 2, start: s.model)
        var batches = 0
        let outcome = try t.train(shouldStop: { batches == (stopAfterBatches ?? -1) }) { if case .batch = $0 { batches += 1 } }
        return (t, outcome)
    }

    @Test("Frozen parts stay bit for bit, in the model and in the written (averaged) model; frozen parts take no Adam state",
          arguments: [FrozenParts.orbitals, .functional, [.orbitals, .functional], []])
    func frozenTraining(freeze: FrozenParts) throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let src = try Self.source(data, hyper: try Self.hyper())
        let start = try FineTuning.start(from: src, sourceName: "src", sourceSHA256: "00", dataset: data, operation: .sum,
                                         elementBaseline: true, seed: 1729).model
        let (t, outcome) = try Self.fineTune(data, src, freeze: freeze, epochs: 2, dir: dir.file("run"))
        #expect(outcome == .finished)
        let written = try QDFModel.load(path: dir.file("run/model.safetensors"))
        #expect(written.metadata["freeze"] == freeze.description && written.metadata["init_from"] == "src")
        var trainable = 0
        for e in t.model.layout.entries {
            let moved = e.range.contains { t.model.parameters[$0] != start.parameters[$0] }
            let hk = e.name.hasPrefix("W_density") || e.name.hasPrefix("W_HK") || e.name.hasPrefix("W_potential")
            #expect(!hk || freeze.freezes(tensor: e.name) == freeze.contains(.orbitals), "\(e.name): the HK map freezes with the orbitals")
            if freeze.freezes(tensor: e.name) {
                #expect(!moved, "\(e.name) is frozen but changed")
                #expect(Array(written.parameters[e.range]) == Array(start.parameters[e.range]), "\(e.name) in the written model")
            } else {
                #expect(moved, "\(e.name) did not train")
            }
            if !freeze.freezes(tensor: e.name) { trainable += e.count }
        }
        #expect(t.adam.m.count == trainable && t.adam.v.count == trainable)
        if freeze.contains(.orbitals) { #expect(t.records.allSatisfy { $0.lossV == 0 }) }
        else { #expect(t.records.allSatisfy { $0.lossV > 0 }) }
    }

    @Test("A fine-tuning run with frozen parts resumes bit for bit after an interruption mid-epoch")
    func resume() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        let src = try Self.source(data, hyper: try Self.hyper())
        let (full, _) = try Self.fineTune(data, src, freeze: .functional, epochs: 3, dir: dir.file("full"))
        let (_, out) = try Self.fineTune(data, src, freeze: .functional, epochs: 3, dir: dir.file("cut"), stopAfterBatches: 8)
        #expect(out == .interrupted(epoch: 1, batch: 2))
        let back = try Trainer.resume(runDirectory: dir.file("cut"), workers: 2)
        #expect(back.options.freeze == .functional)
        #expect(try back.train() == .finished)
        #expect(back.model.parameters == full.model.parameters)
        #expect(back.evaluationModel.parameters == full.evaluationModel.parameters)
        #expect(back.records.map(\.maeTest) == full.records.map(\.maeTest))
    }

    @Test("Freezing without a model to start from, or a start with other outputs, is refused")
    func refusals() throws {
        let dir = try TemporaryDirectory()
        let data = try Dataset.load(directory: try TrainingTests.writeDataset(dir))
        var o = try TrainingTests.smallOptions(epochs: 1)
        o.freeze = .orbitals
        #expect(throws: QDFError.self) { _ = try Trainer(dataset: data, options: o, runDirectory: dir.file("a")) }
        let src = try Self.source(data, hyper: try Self.hyper())
        var two = src
        two = try QDFModel(hyper: { var h = src.hyper; h.outputs = 2; return h }(), dictionary: src.dictionary, seed: 1)
        #expect(throws: QDFError.self) {
            _ = try Trainer(dataset: data, options: TrainingTests.smallOptions(epochs: 1), runDirectory: dir.file("b"), start: two)
        }
    }

    @Test("qdf train --init-from/--freeze and qdf probe from the command line; wrong uses named",
          .enabled(if: InterruptionTests.available, "the qdf executable is not built beside the tests"))
    func commandLine() throws {
        let dir = try TemporaryDirectory()
        let data = try InterruptionTests.dataset(dir)
        let gap = try TrainingTests.writeDataset(dir, name: "toy_gap_eV", outputs: 2)
        let chem = ["--allow-open-shell", "--allow-geometry"]
        var r = try InterruptionTests.run(["train", data, "-o", dir.file("src"), "--epochs", "1", "--dim", "16", "--hidden-hk", "8",
                                           "--layer-functional", "1", "--layer-hk", "1"] + chem)
        #expect(r.status == 0, "\(r.stderr)")
        let src = dir.file("src/model.safetensors")
        r = try InterruptionTests.run(["train", gap, "-o", dir.file("ft"), "--init-from", src, "--freeze", "functional",
                                       "--epochs", "2"] + chem)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("fine-tuning from") && r.stderr.contains("frozen: functional"))
        let ft = try QDFModel.load(path: dir.file("ft/model.safetensors"))
        let srcModel = try QDFModel.load(path: src)
        #expect(ft.metadata["init_from_sha256"] == sha256Hex(try Data(contentsOf: URL(fileURLWithPath: src))))
        #expect(ft.hyper.dim == 16 && ft.hyper.outputs == 2 && ft.metadata["freeze"] == "functional")
        #expect(ft.tensor("W_functional.0.weight") == srcModel.tensor("W_functional.0.weight"))
        #expect(ft.tensor("coefficient.weight") != srcModel.tensor("coefficient.weight"))
        r = try InterruptionTests.run(["probe", "--model", src, gap, "-o", dir.file("probe.safetensors")])
        #expect(r.status == 0, "\(r.stderr)")
        let probed = try QDFModel.load(path: dir.file("probe.safetensors"))
        #expect(probed.tensor("coefficient.weight") == srcModel.tensor("coefficient.weight") && probed.metadata["probe"] != nil)
        // Wrong uses.
        r = try InterruptionTests.run(["train", gap, "-o", dir.file("x"), "--freeze", "orbitals"] + chem)
        #expect(r.status != 0 && r.stderr.contains("--freeze needs --init-from"))
        r = try InterruptionTests.run(["train", gap, "-o", dir.file("x"), "--init-from", src, "--dim", "8"] + chem)
        #expect(r.status != 0 && r.stderr.contains("drop --dim"))
        r = try InterruptionTests.run(["train", gap, "-o", dir.file("x"), "--init-from", src, "--freeze", "head"] + chem)
        #expect(r.status != 0 && r.stderr.contains("unknown part to freeze 'head'"))
        r = try InterruptionTests.run(["train", gap, "-o", dir.file("x"), "--init-from", dir.file("missing.safetensors")] + chem)
        #expect(r.status != 0 && r.stderr.contains("missing.safetensors"))
    }
}
