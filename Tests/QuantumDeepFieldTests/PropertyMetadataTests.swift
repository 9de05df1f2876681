import Foundation
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

@Suite("Property metadata and readout choice")
struct PropertyMetadataTests {
    /// A toy data set (TrainingTests.writeDataset) with a dataset.json of these properties.
    static func dataset(_ dir: TemporaryDirectory, name: String = "toy_energy_eV", outputs: Int = 1,
                        _ props: [(String, String, PropertyKind)]) throws -> String {
        let folder = try TrainingTests.writeDataset(dir, name: name, outputs: outputs)
        try DatasetMetadata(properties: props.map { PropertyInfo(name: $0.0, unit: $0.1, kind: $0.2) }, source: "test")
            .write(folder: folder)
        return folder
    }

    @Test("readout follows the kind: extensive → sum, intensive → mean, a mix is refused naming both")
    func readoutFollowsKind() throws {
        let e = PropertyInfo(name: "U0_atom", unit: "eV", kind: .extensive)
        let i = PropertyInfo(name: "gap", unit: "eV", kind: .intensive)
        #expect(try PropertyKind.readout(for: [e]) == .sum)
        #expect(try PropertyKind.readout(for: [i, i]) == .mean)
        do {
            _ = try PropertyKind.readout(for: [e, i])
            Issue.record("a mix was accepted")
        } catch let err as QDFError {
            #expect(err.message.contains("U0_atom") && err.message.contains("gap") && err.message.contains("mean"))
        }
        #expect(throws: QDFError.self) { try PropertyKind.readout(for: []) }
        // The QM9 properties of the issue: energies, ZPVE, Cv, α, ⟨R²⟩ extensive; μ, HOMO, LUMO, gap, A, B, C intensive.
        let intensive: Set<String> = ["mu", "homo", "lumo", "gap", "A", "B", "C"]
        for p in QM9Property.allCases {
            #expect(p.kind == (intensive.contains(p.rawValue) ? .intensive : .extensive), "\(p.rawValue)")
            #expect(p.kind.readout == (intensive.contains(p.rawValue) ? .mean : .sum))
        }
    }

    @Test("qdf train's choice from a data-set folder: from dataset.json, --operation wins with a warning, none → sum, mix refused")
    func chooseFromFolder() throws {
        let dir = try TemporaryDirectory()
        let ext = try Dataset.load(directory: try Self.dataset(dir, name: "e_U0_eV", [("U0_atom", "eV", .extensive)]))
        #expect(try ext.chooseReadout(requested: nil).readout == .sum)
        #expect(try ext.chooseReadout(requested: nil).reason.contains("extensive"))
        let int = try Dataset.load(directory: try Self.dataset(dir, name: "i_mu_D", [("mu", "D", .intensive)]))
        let c = try int.chooseReadout(requested: nil)
        #expect(c.readout == .mean && c.warning == nil && c.reason.contains("mu is intensive"))
        let forced = try int.chooseReadout(requested: .sum)
        #expect(forced.readout == .sum && forced.warning?.contains("mu is intensive") == true)
        #expect(try int.chooseReadout(requested: .mean).warning == nil)
        let plain = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "plain_energy_eV"))
        #expect(plain.metadata == nil)
        #expect(try plain.chooseReadout(requested: nil).readout == .sum)
        let mixed = try Dataset.load(directory: try Self.dataset(dir, name: "m_x_eV", outputs: 2,
                                                                 [("U0", "eV", .extensive), ("gap", "eV", .intensive)]))
        do {
            _ = try mixed.chooseReadout(requested: nil)
            Issue.record("a mixed data set got a readout")
        } catch let err as QDFError {
            #expect(err.file?.hasSuffix("m_x_eV/dataset.json") == true)
            #expect(err.message.contains("U0") && err.message.contains("gap") && err.message.contains("--operation"))
        }
    }

    @Test("units and property names: from dataset.json, else from the folder's name")
    func unitsAndNames() throws {
        let dir = try TemporaryDirectory()
        let hl = try Dataset.load(directory: try Self.dataset(dir, name: "x_homolumo_eV", outputs: 2,
                                                              [("homo", "eV", .intensive), ("lumo", "eV", .intensive)]))
        #expect(hl.unit == "eV" && hl.propertyNames == ["homo", "lumo"])
        #expect(hl.modelMetadata == ["property": "homo,lumo", "unit": "eV", "property_kind": "intensive,intensive"])
        let two = try Dataset.load(directory: try Self.dataset(dir, name: "y_two_units", outputs: 2,
                                                               [("mu", "D", .intensive), ("gap", "eV", .intensive)]))
        #expect(two.unit == "D,eV")
        let plain = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "QM9sub_atomizationenergy_eV"))
        #expect(plain.unit == "eV" && plain.propertyNames == ["atomizationenergy"])
        #expect(plain.modelMetadata == ["property": "atomizationenergy", "unit": "eV"])
        let dip = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "QM9_mu_D"))
        #expect(dip.unit == "D")
        let pol = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "QM9_alpha_bohr3"))
        #expect(pol.unit == "bohr^3")
        let p2 = try Dataset.load(directory: try TrainingTests.writeDataset(dir, name: "Q_homolumo_eV", outputs: 2))
        #expect(p2.propertyNames == ["homolumo_0", "homolumo_1"])
    }

    @Test("a bad dataset.json: error names the file, the line where it can, and the problem")
    func badMetadata() throws {
        let dir = try TemporaryDirectory()
        let folder = try TrainingTests.writeDataset(dir, name: "bad_energy_eV")
        let path = folder + "/dataset.json"
        func loadError(_ json: String) throws -> QDFError? {
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            do { _ = try Dataset.load(directory: folder); return nil } catch let e as QDFError { return e }
        }
        var e = try loadError("{\"properties\": [\n {\"name\": \"E\", \"unit\": \"eV\", \"kind\": \"extensiv\"}\n]}")
        #expect(e?.file == path && e?.line == 2 && e?.message.contains("extensive or intensive") == true)
        e = try loadError("{\"properties\": [")
        #expect(e?.file == path && e?.message.contains("not valid JSON") == true)
        e = try loadError("{\"properties\": [{\"name\": \"a\", \"unit\": \"eV\", \"kind\": \"extensive\"}, {\"name\": \"b\", \"unit\": \"eV\", \"kind\": \"extensive\"}]}")
        #expect(e?.file == path && e?.message.contains("2 properties") == true && e?.message.contains("1 value") == true)
        e = try loadError("{\"properties\": [{\"name\": \"a\", \"kind\": \"extensive\"}]}")
        #expect(e?.message.contains("no \"unit\"") == true)
        e = try loadError("{\"properties\": []}")
        #expect(e?.message.contains("empty") == true)
        // What qdf writes reads back unchanged.
        let md = DatasetMetadata(properties: [PropertyInfo(name: "r2", unit: "bohr^2", kind: .extensive, meaning: "electronic spatial extent <R^2>")],
                                 source: "QM9 \"quoted\" / slash")
        #expect(try DatasetMetadata.parse(Data(md.jsonText().utf8), path: "x") == md)
    }

    @Test("a trained model records property, unit and property_kind; qdf predict's MAE phrase uses them")
    func modelMetadata() throws {
        let dir = try TemporaryDirectory()
        let folder = try Self.dataset(dir, name: "toy_gap_eV", [("gap", "eV", .intensive)])
        let data = try Dataset.load(directory: folder)
        var o = try TrainingTests.smallOptions(epochs: 1)
        o.hyper.operation = try data.chooseReadout(requested: nil).readout
        let trainer = try Trainer(dataset: data, options: o, runDirectory: dir.file("run"))
        _ = try trainer.train()
        let model = try QDFModel.load(path: dir.file("run/model.safetensors"))
        #expect(model.metadata["property"] == "gap" && model.metadata["unit"] == "eV")
        #expect(model.metadata["property_kind"] == "intensive")
        #expect(model.hyper.operation == .mean)
        let labels = OutputLabels(metadata: model.metadata, outputs: model.hyper.outputs)
        #expect(labels.maePhrase([0.123456]) == "MAE gap 0.12346 eV")
        // Several outputs, per-output units; models without names keep the old phrase.
        let two = OutputLabels(metadata: ["property": "mu,gap", "unit": "D,eV"], outputs: 2)
        #expect(two.maePhrase([0.5, 0.25]) == "MAE mu 0.50000 D, gap 0.25000 eV")
        #expect(two.commonUnit == nil)
        let old = OutputLabels(metadata: ["unit": "eV"], outputs: 2)
        #expect(old.names.isEmpty && old.maePhrase([0.5, 0.25]) == "MAE 0.50000 / 0.25000 eV")
        let wrong = OutputLabels(metadata: ["property": "a,b,c", "unit": "eV,D"], outputs: 1)
        #expect(wrong.names.isEmpty && wrong.units.isEmpty)
    }

    @Test("reports label axes and tables with the property's name and unit")
    func reportLabels() throws {
        let dir = try TemporaryDirectory()
        let run = dir.file("run")
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try SafetensorsFile(tensors: [], metadata: ["property": "homo,lumo", "unit": "eV", "train_atoms": "3-4"])
            .write(path: run + "/model.safetensors")
        _ = try dir.write("run/predictions_test.tsv",
                          "ID\tCorrect_0\tCorrect_1\tPredict_0\tPredict_1\tError_0\tError_1\tAtoms\na\t1\t2\t1.5\t2.25\t0.5\t0.25\t3\n")
        let report = Report(runs: [try ReportRun.load(run)])
        #expect(report.labels.names == ["homo", "lumo"])
        let figs = Dictionary(report.figures().map { ($0.name, $0.figure) }, uniquingKeysWith: { a, _ in a })
        #expect(figs["parity_1"]?.svg().contains(">correct lumo (eV)<") == true)
        #expect(figs["parity_1"]?.svg().contains(">predicted lumo (eV)<") == true)
        #expect(figs["mae_by_atoms_0"]?.svg().contains(">MAE homo (eV)<") == true)
        #expect(report.html().contains("Properties: homo (eV), lumo (eV)"))
        let table = try #require(report.statistics[0]).table(unit: "eV", labels: report.labels)
        #expect(table.contains("MAE_homo(eV)") && table.contains("RMSE_lumo(eV)"))
        // Without names: the old labels.
        let plain = Report(runs: [try ReportRun.load(run + "/predictions_test.tsv")], unit: "eV")
        let pf = Dictionary(plain.figures().map { ($0.name, $0.figure) }, uniquingKeysWith: { a, _ in a })
        #expect(pf["parity_1"]?.svg().contains(">correct [1] (eV)<") == true)
    }
}
