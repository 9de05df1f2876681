import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// The model that ships with qdf-swift, `qdf demo`, and the commands that fall back to
/// the bundled model when no --model is given.
@Suite("Bundled model and demo", .serialized)
struct BundledModelTests {
    /// Runs the built `qdf` with both streams captured.
    static func run(_ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess(InterruptionTests.qdf, args, environment: environment)
    }

    @Test("The bundled model (v3) loads: the default widths, the orbital environment, the canonical frame, a model card in its metadata")
    func loads() throws {
        let b = try BundledModel.load()
        #expect(b.model.hyper.dim == 250 && b.model.hyper.layerFunctional == 3 && b.model.hyper.layerHK == 3)
        #expect(b.model.hyper.environment == EnvironmentShape(layers: 3) && b.model.hyper.potentialFeatures == 0)
        #expect(b.model.hyper.frame == .canonical && b.model.metadata["hk_map"] == "true")
        #expect(b.model.metadata["model_name"] == "qdf-qm9under14atoms v3")
        #expect(b.model.hyper.basisSet.name == "6-31G")
        #expect(b.model.metadata["unit"] == "eV")
        #expect(b.model.metadata["train_atoms"] == "3-14")
        for key in ["model_name", "model_card_data", "model_card_test_mae", "model_card_over15_mae", "model_card_recipe",
                    "model_card_training"] {
            #expect(b.model.metadata[key]?.isEmpty == false, "metadata lacks \(key)")
        }
        #expect(b.summary.contains("test MAE"))
    }

    @Test("The demo molecules span 5 to 29 atoms, carry QM9 values and include benzene")
    func demoMolecules() throws {
        let mols = try readMolecules(try BundledResources.path(BundledResources.demoMoleculesFile))
        #expect(mols.count == 9)
        #expect(mols.map(\.atomCount).min() == 5 && mols.map(\.atomCount).max() == 29)
        #expect(mols.allSatisfy { $0.properties.count == 1 && $0.properties[0] < 0 })
        let benzene = try #require(mols.first { $0.id == "dsgdb9nsd_000214" })
        #expect(benzene.formula == "C6H6")
    }

    @Test("A missing resource is an error naming the folders searched, not a crash")
    func missingResource() throws {
        #expect {
            _ = try BundledResources.path("no-such-resource.bin")
        } throws: { e in
            let m = (e as? QDFError)?.message ?? ""
            return m.contains("no-such-resource.bin") && m.contains("QDF_RESOURCES") && m.contains("looked in")
        }
    }

    /// "0.1234 eV" → 0.1234.
    static func number(_ s: String?) throws -> Double {
        let first = try #require(s?.split(separator: " ").first)
        return try #require(Double(first))
    }

    @Test("The errors the model card states are the errors the bundled model makes (QM9under14atoms test, QM9over15atoms sample)",
          .enabled(if: Shared.available, Shared.skipMessage))
    func cardErrors() throws {
        let b = try BundledModel.load()
        let predictor = Predictor(model: b.model)
        for (file, key) in [("QM9under14atoms_atomizationenergy_eV/test.txt", "model_card_test_mae"),
                            ("QM9over15atoms_atomizationenergy_eV/test.txt", "model_card_over15_mae")] {
            let mols = try readMolecules(Shared.dataset(file))
            let preds = try predictor.predict(mols)
            let mae = zip(mols, preds).map { abs(Double($1.predicted[0]) - $0.properties[0]) }.reduce(0, +) / Double(mols.count)
            let stated = try Self.number(b.model.metadata[key])
            // The card rounds to 4 decimals; thread scheduling cannot change a prediction.
            #expect(abs(mae - stated) < 6e-5, "\(file): MAE \(mae) eV, the card states \(stated)")
        }
    }

    @Test("qdf demo writes its table, cube and pictures into the folder it names",
          .enabled(if: InterruptionTests.available, "the qdf executable was not built beside the tests"))
    func demo() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("first run")  // a space in the path, as users have
        let r = try Self.run(["demo", "--output", out, "--spacing", "0.2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("using the bundled model"))
        let mols = try readMolecules(try BundledResources.path(BundledResources.demoMoleculesFile))
        for m in mols { #expect(r.stdout.contains(m.id), "the table lacks \(m.id)") }
        #expect(r.stdout.contains("\(out)/benzene.cube"))

        // predictions.tsv: the printed molecules, error = predicted − QM9, predictions equal the library's.
        let tsv = try readTSV(out + "/predictions.tsv")
        #expect(tsv.header == ["ID", "Formula", "Atoms", "Correct", "Predict", "Error", "Role"])
        #expect(tsv.rows.map { $0[0] } == mols.map(\.id))
        let direct = try Predictor(model: try BundledModel.load().model).predict(mols)
        for (row, p) in zip(tsv.rows, direct) {
            let correct = try #require(Double(row[3])), predicted = try #require(Double(row[4])), err = try #require(Double(row[5]))
            #expect(abs(err - (predicted - correct)) < 1e-9)
            #expect(abs(predicted - Double(p.predicted[0])) < 1e-5)
        }
        #expect(tsv.rows.filter { Int($0[2])! > 14 }.allSatisfy { $0[6] == "larger than any training molecule" })

        // The cube holds benzene's total density: frozen cores (6 × 1s², exact) plus the
        // model's density holding the other 30 electrons over the box; the pictures decode.
        let cube = try CubeFile.read(path: out + "/benzene.cube")
        #expect(cube.atoms.count == 12)
        #expect(cube.comments[0].contains("total electron density"))
        let cores = FrozenCores(Molecule(id: "benzene", atomicNumbers: cube.atoms.map(\.atomicNumber),
                                         positions: cube.atoms.map { $0.position * angstromPerBohr }))
        let coreOnGrid = (0..<cube.grid.pointCount).reduce(0.0) { $0 + cores.density(bohr: cube.grid.point($1)) } * cube.grid.voxelVolume
        #expect(cores.electronCount == 12)
        #expect(abs(cube.integral - coreOnGrid - 30) < 0.01, "∫ρ − ∫ρ_core = \(cube.integral - coreOnGrid)")
        for png in ["benzene_profile_CC.png", "benzene_slice.png"] {
            let size = try #require(pngSize(path: out + "/" + png), "\(png) does not decode")
            #expect(size.width > 300 && size.height > 300)
        }
        let profile = try readTSV(out + "/benzene_profile_CC.tsv")
        #expect(profile.rows.count > 50)
        // Run again into the same folder: files are replaced, nothing fails.
        #expect(try Self.run(["demo", "--output", out, "--spacing", "0.3"]).status == 0)
        // An output that is a file: a clear error naming it, the file untouched.
        let file = try dir.write("taken", "keep me\n")
        let bad = try Self.run(["demo", "--output", file])
        #expect(bad.status == 1 && bad.stderr.contains("\(file): exists and is not a folder"), "\(bad.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me\n")
    }

    @Test("qdf predict and qdf density without --model use the bundled model and say so",
          .enabled(if: InterruptionTests.available, "the qdf executable was not built beside the tests"))
    func defaultModel() throws {
        let dir = try TemporaryDirectory()
        let molecules = try BundledResources.path(BundledResources.demoMoleculesFile)
        let implicit = try Self.run(["predict", molecules])
        #expect(implicit.status == 0, "\(implicit.stderr)")
        #expect(implicit.stderr.contains("no --model given: using the bundled model"))
        let explicit = try Self.run(["predict", molecules, "--model", try BundledModel.load().path])
        #expect(explicit.status == 0)
        #expect(!explicit.stderr.contains("bundled model"))
        #expect(implicit.stdout == explicit.stdout && implicit.stdout.split(separator: "\n").count == 10)

        let d = try Self.run(["density", molecules, "--slice", "best", "--slice-out", dir.file("s.png")])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(d.stderr.contains("no --model given: using the bundled model"))
        #expect(pngSize(path: dir.file("s.png")) != nil)
    }
}
