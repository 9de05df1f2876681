import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// The report's inputs: predictions TSVs (as `qdf predict` writes them), learning-curve
// TSVs (as `qdf train` and the reference write them) and run directories holding
// them beside the model, whose metadata names the dataset, unit and training sizes.

/// A predictions TSV: ID, Correct…, Predict…, [Error…], [Atoms]; `_0`, `_1`, … suffixes
/// for several outputs. Values are kept row-major (molecule × output).
public struct PredictionTable: Sendable {
    public var path: String
    public var outputs: Int
    public var ids: [String] = []
    /// Atom counts from an `Atoms` column, or assigned from molecule files.
    public var atoms: [Int?] = []
    public var correct: [Double] = []
    public var predicted: [Double] = []
    /// 1-based line numbers of the rows, for error messages.
    public var lines: [Int] = []

    public var count: Int { ids.count }

    public func correct(_ i: Int, _ q: Int) -> Double { correct[i * outputs + q] }
    public func predicted(_ i: Int, _ q: Int) -> Double { predicted[i * outputs + q] }

    public static func read(path: String) throws -> PredictionTable {
        let reader = try openLines(path)
        guard let headerLine = try reader.nextLine() else { throw QDFError("the file is empty", file: path) }
        let header = headerLine.split(separator: "\t", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces) }
        guard let idCol = header.firstIndex(of: "ID") else {
            throw reader.error("no ID column in the header (expected ID, Correct, Predict, Error)")
        }
        func columns(_ base: String) -> [Int] {
            if let i = header.firstIndex(of: base) { return [i] }
            var out = [Int]()
            while let i = header.firstIndex(of: "\(base)_\(out.count)") { out.append(i) }
            return out
        }
        let cCols = columns("Correct"), pCols = columns("Predict")
        guard !pCols.isEmpty else { throw reader.error("no Predict column in the header") }
        guard !cCols.isEmpty else {
            throw reader.error("no Correct column: the report needs predictions of molecules with known values")
        }
        guard cCols.count == pCols.count else {
            throw reader.error("\(cCols.count) Correct column(s) but \(pCols.count) Predict column(s)")
        }
        let atomsCol = header.firstIndex(of: "Atoms")
        var t = PredictionTable(path: path, outputs: pCols.count)
        var seen = Set<String>()
        while let line = try reader.nextLine() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == header.count else {
                throw reader.error("\(f.count) fields, the header has \(header.count)")
            }
            let id = String(f[idCol])
            guard !id.isEmpty else { throw reader.error("empty ID") }
            guard seen.insert(id).inserted else { throw reader.error("molecule '\(id)' appears twice") }
            for (cols, name) in [(cCols, "Correct"), (pCols, "Predict")] {
                for (q, c) in cols.enumerated() {
                    guard let v = Double(f[c].trimmingCharacters(in: .whitespaces)), v.isFinite else {
                        throw reader.error("\(name)\(cols.count > 1 ? "_\(q)" : "") is not a finite number: '\(f[c])'")
                    }
                    if name == "Correct" { t.correct.append(v) } else { t.predicted.append(v) }
                }
            }
            var n: Int? = nil
            if let a = atomsCol {
                guard let v = Int(f[a].trimmingCharacters(in: .whitespaces)), v > 0 else {
                    throw reader.error("Atoms is not a positive integer: '\(f[a])'")
                }
                n = v
            }
            t.ids.append(id); t.atoms.append(n); t.lines.append(reader.lineNumber)
        }
        if t.count == 0 { throw QDFError("no predictions after the header", file: path) }
        return t
    }

    /// Fills in the atom counts missing from the file from `atomCounts` (ID → atoms).
    /// Throws at the first molecule found in neither.
    public mutating func assignAtoms(_ atomCounts: [String: Int]) throws {
        for i in 0..<count where atoms[i] == nil {
            guard let n = atomCounts[ids[i]] else {
                throw QDFError("molecule '\(ids[i])' has no atom count: it is in none of the --molecules files "
                               + "and the file has no Atoms column", file: path, line: lines[i])
            }
            atoms[i] = n
        }
    }

    public var hasAllAtoms: Bool { !atoms.contains { $0 == nil } }

    /// Overall and per-size error sums (sizes only when every atom count is known).
    public func statistics() -> ErrorBySize {
        var s = ErrorBySize(outputs: outputs)
        let bySize = hasAllAtoms
        var e = [Double](repeating: 0, count: outputs)
        for i in 0..<count {
            for q in 0..<outputs { e[q] = predicted(i, q) - correct(i, q) }
            if bySize { s.add(atoms: atoms[i]!, errors: e) } else { s.overall.add(e) }
        }
        return s
    }

    /// Appends another table's rows (same number of outputs).
    public mutating func append(_ other: PredictionTable) throws {
        guard other.outputs == outputs else {
            throw QDFError("\(other.outputs) output(s), but \(path) has \(outputs)", file: other.path)
        }
        ids += other.ids; atoms += other.atoms; correct += other.correct
        predicted += other.predicted; lines += other.lines
    }
}

/// A learning-curve TSV: Epoch, Time(sec), Loss_E, Loss_V, MAE_val(unit), MAE_test(unit).
public struct LearningCurve: Sendable {
    public var path: String
    public var epoch: [Double] = []
    public var lossE: [Double] = []
    public var lossV: [Double] = []
    public var maeVal: [Double] = []
    public var maeTest: [Double] = []
    /// Training time at the end of each epoch (Time(sec) column); empty when the file has none.
    public var seconds: [Double] = []
    /// The unit in the MAE columns' names, e.g. "eV" from "MAE_val(eV)".
    public var unit: String?

    public static func read(path: String) throws -> LearningCurve {
        let reader = try openLines(path)
        guard let headerLine = try reader.nextLine() else { throw QDFError("the file is empty", file: path) }
        let header = headerLine.split(separator: "\t", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces) }
        func column(_ prefix: String) throws -> Int {
            guard let i = header.firstIndex(where: { $0 == prefix || $0.hasPrefix(prefix + "(") }) else {
                throw reader.error("no \(prefix) column in the header (expected Epoch, Time(sec), Loss_E, Loss_V, MAE_val, MAE_test)")
            }
            return i
        }
        let cols = try ["Epoch", "Loss_E", "Loss_V", "MAE_val", "MAE_test"].map(column)
        var c = LearningCurve(path: path)
        let timeColumn = header.firstIndex(where: { $0 == "Time" || $0.hasPrefix("Time(") })
        let name = header[cols[3]]
        if let open = name.firstIndex(of: "("), name.hasSuffix(")") {
            let u = String(name[name.index(after: open)..<name.index(before: name.endIndex)])
            if !u.isEmpty { c.unit = u }
        }
        while let line = try reader.nextLine() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == header.count else {
                throw reader.error("\(f.count) fields, the header has \(header.count)")
            }
            var v = [Double]()
            for (k, i) in cols.enumerated() {
                guard let x = Double(f[i].trimmingCharacters(in: .whitespaces)), !x.isInfinite else {
                    throw reader.error("\(header[cols[k]]) is not a number: '\(f[i])'")
                }
                v.append(x)
            }
            if let last = c.epoch.last, v[0] <= last {
                throw reader.error("epoch \(v[0]) does not follow epoch \(last)")
            }
            c.epoch.append(v[0]); c.lossE.append(v[1]); c.lossV.append(v[2])
            c.maeVal.append(v[3]); c.maeTest.append(v[4])
            if let t = timeColumn {
                guard let x = Double(f[t].trimmingCharacters(in: .whitespaces)), x.isFinite, x >= 0 else {
                    throw reader.error("\(header[t]) is not a number of seconds: '\(f[t])'")
                }
                c.seconds.append(x)
            }
        }
        if c.epoch.isEmpty { throw QDFError("no epochs after the header", file: path) }
        return c
    }
}

/// One run in the report: predictions and/or a learning curve under one label.
public struct ReportRun: Sendable {
    public var label: String
    public var sources: [String] = []
    public var predictions: PredictionTable?
    public var curve: LearningCurve?
    /// The model's metadata when the input was a run directory.
    public var metadata: [String: String] = [:]

    public init(label: String) { self.label = label }

    /// The training sizes from the model's metadata ("train_atoms": "3-14").
    public var trainRange: ClosedRange<Int>? { metadata["train_atoms"].flatMap(parseAtomRange) }
    public var unit: String? { metadata["unit"] ?? curve?.unit }

    /// Loads a run directory (model.safetensors, learning_curve.tsv, predictions_test.tsv),
    /// a predictions TSV or a learning-curve TSV (told apart by their headers).
    public static func load(_ path: String, label: String? = nil) throws -> ReportRun {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw QDFError("no such file or directory", file: path)
        }
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var name = (trimmed as NSString).lastPathComponent
        if !isDir.boolValue, name.lowercased().hasSuffix(".tsv") { name = String(name.dropLast(4)) }
        var run = ReportRun(label: label ?? name)
        if isDir.boolValue {
            let model = trimmed + "/model.safetensors"
            if FileManager.default.fileExists(atPath: model) {
                run.metadata = try SafetensorsFile.read(path: model).metadata
                run.sources.append(model)
            }
            let curve = trimmed + "/learning_curve.tsv", preds = trimmed + "/predictions_test.tsv"
            if FileManager.default.fileExists(atPath: curve) {
                run.curve = try LearningCurve.read(path: curve); run.sources.append(curve)
            }
            if FileManager.default.fileExists(atPath: preds) {
                run.predictions = try PredictionTable.read(path: preds); run.sources.append(preds)
            }
            if run.curve == nil && run.predictions == nil {
                throw QDFError("a run directory needs learning_curve.tsv or predictions_test.tsv; found neither", file: path)
            }
            return run
        }
        let reader = try openLines(path)
        let header = try reader.nextLine() ?? ""
        let cols = header.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) }
        if cols.first == "Epoch" {
            run.curve = try LearningCurve.read(path: path)
        } else if cols.contains("ID") {
            run.predictions = try PredictionTable.read(path: path)
        } else {
            throw QDFError("neither a predictions TSV (ID, Correct, Predict, Error) nor a learning curve "
                           + "(Epoch, Time(sec), Loss_E, ...): header '\(header.prefix(80))'", file: path, line: 1)
        }
        run.sources.append(path)
        return run
    }

    /// Merges another input given the same label: predictions are concatenated (e.g. a
    /// test set and an extrapolation set of one model); only one learning curve is allowed.
    public mutating func merge(_ other: ReportRun) throws {
        if let p = other.predictions {
            if predictions == nil { predictions = p } else { try predictions!.append(p) }
        }
        if let c = other.curve {
            if curve != nil {
                throw QDFError("run '\(label)' already has a learning curve (\(curve!.path))", file: c.path)
            }
            curve = c
        }
        for (k, v) in other.metadata where metadata[k] == nil { metadata[k] = v }
        sources += other.sources
    }
}

/// Maps molecule IDs to atom counts from dataset files (QDF text or XYZ).
public func atomCounts(moleculeFiles: [String]) throws -> [String: Int] {
    var map = [String: Int]()
    for f in moleculeFiles {
        let reader = try openMoleculeFile(f)
        while let m = try reader.next() {
            if let old = map[m.id], old != m.atomCount {
                throw QDFError("molecule '\(m.id)' has \(m.atomCount) atoms here but \(old) in an earlier file", file: f)
            }
            map[m.id] = m.atomCount
        }
    }
    return map
}
