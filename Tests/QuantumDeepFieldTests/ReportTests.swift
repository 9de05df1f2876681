import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Every element of an XML document, with its attributes, the `id` of the enclosing
/// `<svg>` and the attributes of the nearest enclosing `<g>`.
final class XMLElements: NSObject, XMLParserDelegate {
    struct Element { var name: String; var attributes: [String: String]; var svg: String?; var group: [String: String]; var text = "" }
    var elements: [Element] = []
    private var svgStack: [String] = [], groupStack: [[String: String]] = [], open: [Int] = []
    var error: Error?

    static func parse(_ text: String) -> XMLElements {
        let collector = XMLElements()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = collector
        // On Linux, parse() can return true after a well-formedness error (e.g. a missing
        // end tag); parserError and the delegate's error callback are what tell.
        let ok = parser.parse()
        if collector.error == nil { collector.error = parser.parserError }
        if !ok && collector.error == nil { collector.error = QDFError("XML parse failed") }
        return collector
    }
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if name == "svg" { svgStack.append(attributes["id"] ?? "") }
        elements.append(Element(name: name, attributes: attributes, svg: svgStack.last, group: groupStack.last ?? [:]))
        open.append(elements.count - 1)
        if name == "g" { groupStack.append(attributes) }
    }
    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        if error == nil { error = parseError }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "svg" { _ = svgStack.popLast() }
        if name == "g" { _ = groupStack.popLast() }
        _ = open.popLast()
    }
    func all(_ name: String, svg: String? = nil, groupClass: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (svg == nil || $0.svg == svg) && (groupClass == nil || $0.group["class"] == groupClass) }
    }
}

/// A fake run: molecules of 3–9 atoms, predictions with size-dependent errors, a learning curve.
struct FakeRun {
    var ids: [String] = [], atoms: [Int] = [], correct: [Double] = [], predicted: [Double] = []
    var epochs: [[Double]] = []   // Epoch, Time, Loss_E, Loss_V, MAE_val, MAE_test
    let dir: TemporaryDirectory

    init(count: Int = 60, seed: UInt64 = 7) throws {
        dir = try TemporaryDirectory()
        var g = SplitMix64(seed: seed)  // the fake data are the same every run
        var molecules = ""
        for i in 0..<count {
            let n = 3 + Int(g.nextUnit() * 7)  // 3...9
            let id = "mol_\(i)"
            let c = -10 - 5 * Double(n) * g.nextUnit()
            let p = c + (g.nextUnit() - 0.5) * 0.02 * Double(n)
            ids.append(id); atoms.append(n); correct.append(c); predicted.append(p)
            molecules += "\(id)\n"
            for a in 0..<n { molecules += "\(a % 2 == 0 ? "C" : "H") \(Double(a) * 1.1) \(g.nextUnit()) 0.0\n" }
            molecules += "\(c)\n\n"
        }
        try dir.write("molecules.txt", molecules)
        var curve = "Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val(eV)\tMAE_test(eV)\n"
        for e in 0..<40 {
            let row = [Double(e), 1.5 * Double(e + 1), 1000 * exp(-Double(e) / 6) + 2 + g.nextUnit(),
                       300 * exp(-Double(e) / 9) + 20, 2 * exp(-Double(e) / 8) + 0.05 + 0.01 * g.nextUnit(),
                       2 * exp(-Double(e) / 8) + 0.06 + 0.01 * g.nextUnit()]
            epochs.append(row)
            curve += row.map { "\($0)" }.joined(separator: "\t") + "\n"
        }
        try FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
        try dir.write("run/learning_curve.tsv", curve)
        var preds = "ID\tCorrect\tPredict\tError\n"
        for i in 0..<count { preds += "\(ids[i])\t\(correct[i])\t\(predicted[i])\t\(abs(correct[i] - predicted[i]))\n" }
        try dir.write("run/predictions_test.tsv", preds)
        try SafetensorsFile(tensors: [("w", Tensor(shape: [2], values: [1, 2]))],
                            metadata: ["dataset": "fake", "unit": "eV", "train_atoms": "3-6"])
            .write(path: dir.file("run/model.safetensors"))
    }

    /// MAE, RMSE and count per size computed directly from the generated values.
    func bySize() -> [Int: (count: Int, mae: Double, rmse: Double)] {
        var out = [Int: (Int, Double, Double)]()
        for n in Set(atoms) {
            let e = atoms.indices.filter { atoms[$0] == n }.map { predicted[$0] - correct[$0] }
            out[n] = (e.count, e.map(abs).reduce(0, +) / Double(e.count),
                      (e.map { $0 * $0 }.reduce(0, +) / Double(e.count)).squareRoot())
        }
        return out
    }

    func load() throws -> Report {
        var run = try ReportRun.load(dir.file("run"))
        try run.predictions!.assignAtoms(try atomCounts(moleculeFiles: [dir.file("molecules.txt")]))
        return Report(runs: [run])
    }
}

func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

@Suite struct ReportTests {
    @Test func statisticsMatchAnIndependentComputation() throws {
        let fake = try FakeRun()
        let report = try fake.load()
        #expect(report.trainRange == 3...6)   // from the model's metadata
        #expect(report.unit == "eV")
        let st = try #require(report.statistics[0])
        let expected = fake.bySize()
        #expect(st.bins.map(\.atoms) == expected.keys.sorted())
        for b in st.bins {
            let e = expected[b.atoms]!
            #expect(b.count == e.count)
            #expect(close(b.mae[0], e.mae), "MAE at \(b.atoms) atoms")
            #expect(close(b.rmse[0], e.rmse), "RMSE at \(b.atoms) atoms")
        }
        let errors = zip(fake.predicted, fake.correct).map { $0 - $1 }
        #expect(close(st.overall.mae[0], errors.map(abs).reduce(0, +) / Double(errors.count)))
        #expect(close(st.overall.rmse[0], (errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot()))
        #expect(st.overall.count == fake.ids.count)
        let inside = errors.indices.filter { (3...6).contains(fake.atoms[$0]) }.map { abs(errors[$0]) }
        let outside = errors.indices.filter { !(3...6).contains(fake.atoms[$0]) }.map { abs(errors[$0]) }
        let (mi, mo) = report.regionMAE(st, q: 0, range: 3...6)
        #expect(close(try #require(mi), inside.reduce(0, +) / Double(inside.count)))
        #expect(close(try #require(mo), outside.reduce(0, +) / Double(outside.count)))
    }

    @Test("Learning curves against training time: x is linear in Time(sec)/3600; curves without times are left out")
    func learningCurvesAgainstHours() throws {
        let fake = try FakeRun()
        let loaded = try fake.load()
        let noTimes = try fake.dir.write("notime.tsv", "Epoch\tLoss_E\tLoss_V\tMAE_val(eV)\tMAE_test(eV)\n0\t5\t4\t3\t2\n1\t4\t3\t2\t1\n")
        var report = Report(runs: loaded.runs + [try ReportRun.load(noTimes, label: "without times")])
        report.curveAxis = .hours
        let doc = XMLElements.parse(report.html())
        #expect(doc.error == nil)
        let lines = doc.all("polyline", svg: "learning-curves").filter { $0.attributes["data-series"] == "MAE_test" }
        #expect(lines.count == 1, "the curve without a Time(sec) column has no place on a time axis")
        #expect(doc.all("text", svg: "learning-curves").contains { $0.text == "training time (h)" })
        let hours = fake.epochs.map { $0[1] / 3600 }
        let pts = lines[0].attributes["points"]!.split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } }
        #expect(pts.count == hours.count)
        let s = (pts.last![0] - pts[0][0]) / (hours.last! - hours[0])
        for (h, p) in zip(hours, pts) { #expect(abs(pts[0][0] + s * (h - hours[0]) - p[0]) < 0.02) }
        let c = try LearningCurve.read(path: fake.dir.file("run/learning_curve.tsv"))
        #expect(c.seconds == fake.epochs.map { $0[1] })
    }

    @Test func htmlParsesAndItsFiguresShowTheComputedNumbers() throws {
        let fake = try FakeRun()
        let html = try fake.load().html()
        let doc = XMLElements.parse(html)
        #expect(doc.error == nil, "the HTML is not well-formed XML: \(String(describing: doc.error))")
        #expect(doc.all("script").isEmpty)
        let withoutNamespaces = html.replacingOccurrences(of: "http://www.w3.org/", with: "")
        #expect(!withoutNamespaces.contains("http://") && !withoutNamespaces.contains("https://") && !html.contains(" src="),
                "no references to the network besides XML namespaces")
        let expected = fake.bySize()

        // MAE by size: one marker per size with its count and MAE; one bar per size.
        let markers = doc.all("circle", svg: "mae-by-size", groupClass: "series mae")
        #expect(markers.count == expected.count)
        for m in markers {
            let n = Int(m.attributes["data-atoms"]!)!, e = expected[n]!
            #expect(Int(m.attributes["data-count"]!) == e.count)
            #expect(close(Double(m.attributes["data-mae"]!)!, e.mae))
        }
        // Marker heights are linear in the MAE: y = a + b·MAE for every marker.
        let ys = markers.map { (Double($0.attributes["data-mae"]!)!, Double($0.attributes["cy"]!)!) }.sorted { $0.0 < $1.0 }
        let slope = (ys.last!.1 - ys.first!.1) / (ys.last!.0 - ys.first!.0)
        #expect(slope < 0)  // larger MAE is higher on the page
        for (v, y) in ys { #expect(abs(ys.first!.1 + slope * (v - ys.first!.0) - y) < 0.02) }
        let bars = doc.all("rect", svg: "mae-by-size", groupClass: "series counts")
        #expect(Dictionary(uniqueKeysWithValues: bars.map { (Int($0.attributes["data-atoms"]!)!, Int($0.attributes["data-count"]!)!) })
                == expected.mapValues(\.count))
        let regions = doc.all("rect", svg: "mae-by-size").compactMap { $0.attributes["data-region"] }
        #expect(regions.contains("interpolation") && regions.contains("extrapolation"))

        // Parity: every molecule once, with its values.
        let points = doc.all("circle", svg: "parity", groupClass: "series parity")
        #expect(points.count == fake.ids.count)
        for p in points {
            let i = fake.ids.firstIndex(of: p.attributes["data-id"]!)!
            #expect(Double(p.attributes["data-correct"]!)! == fake.correct[i])
            #expect(Double(p.attributes["data-predict"]!)! == fake.predicted[i])
        }

        // Learning curves: one line per quantity, every epoch, y linear in log10(value).
        let lines = doc.all("polyline", svg: "learning-curves").filter { $0.attributes["data-series"] != nil }
        #expect(Set(lines.map { $0.attributes["data-series"]! }) == ["Loss_E", "Loss_V", "MAE_val", "MAE_test"])
        for (k, name) in ["Loss_E", "Loss_V", "MAE_val", "MAE_test"].enumerated() {
            let l = lines.first { $0.attributes["data-series"] == name }!
            let values = fake.epochs.map { $0[k + 2] }
            #expect(Int(l.attributes["data-points"]!) == values.count)
            #expect(Double(l.attributes["data-last"]!)! == values.last!)
            #expect(Double(l.attributes["data-min"]!)! == values.min()!)
            let pts = l.attributes["points"]!.split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } }
            let a = (log10(values[0]), pts[0][1]), b = (log10(values.last!), pts.last![1])
            let s = (b.1 - a.1) / (b.0 - a.0)
            for (v, p) in zip(values, pts) { #expect(abs(a.1 + s * (log10(v) - a.0) - p[1]) < 0.02, "\(name)") }
        }
        // The tables: overall MAE, and the best validation epoch.
        let mae = doc.all("td").first { $0.attributes["class"] == "mae" }!.text
        let errors = zip(fake.predicted, fake.correct).map { abs($0 - $1) }
        #expect(mae == String(format: "%.5f", errors.reduce(0, +) / Double(errors.count)))
        let bestVal = fake.epochs.map { $0[4] }.min()!
        #expect(doc.all("td").first { $0.attributes["class"] == "best-val" }!.text == String(format: "%.5f", bestVal))
    }

    @Test func standaloneSVGsParse() throws {
        for bad in ["<svg><g></svg>", "<svg>&nbsp;</svg>", "<svg a='1' a='2'/>"] {
            #expect(XMLElements.parse(bad).error != nil, "the parser must reject malformed XML: \(bad)")
        }
        let report = try FakeRun().load()
        let figures = report.figures()
        #expect(figures.map(\.name) == ["mae_by_atoms", "parity", "learning_curves"])
        for (name, fig) in figures {
            let doc = XMLElements.parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + fig.svg())
            #expect(doc.error == nil, "\(name).svg does not parse")
            #expect(doc.elements.first?.name == "svg")
        }
    }

    @Test func pngFilesDecodeAtPaperSize() throws {
        let fake = try FakeRun()
        let paths = try fake.load().writePNGs(directory: fake.dir.file("png"))
        #expect(paths.count == 3)
        var sizes = [String: (Int, Int)]()
        for p in paths {
            let s = try #require(pngSize(path: p), "\(p) does not decode")
            sizes[(p as NSString).lastPathComponent] = (s.width, s.height)
        }
        #expect(sizes["mae_by_atoms.png"]! == (1800, 1200))
        #expect(sizes["learning_curves.png"]! == (1800, 1200))
        #expect(sizes["parity.png"]! == (1320, 1200))
    }

    @Test func severalOutputsAndAnAtomsColumn() throws {
        let dir = try TemporaryDirectory()
        let rows = [("a", 3, [1.0, 2.0], [1.5, 2.25]), ("b", 3, [0.0, -1.0], [-0.5, -1.0]), ("c", 4, [2.0, 2.0], [2.0, 3.0])]
        var text = "ID\tCorrect_0\tCorrect_1\tPredict_0\tPredict_1\tError_0\tError_1\tAtoms\n"
        for r in rows { text += "\(r.0)\t\(r.2[0])\t\(r.2[1])\t\(r.3[0])\t\(r.3[1])\t0\t0\t\(r.1)\n" }
        let path = try dir.write("p.tsv", text)
        let report = Report(runs: [try ReportRun.load(path)], trainRange: 3...3)
        #expect(report.outputs == 2)
        let st = try #require(report.statistics[0])
        #expect(st.bins.map(\.atoms) == [3, 4])
        #expect(st.bins[0].mae == [0.5, 0.125])
        #expect(st.bins[1].mae == [0, 1])
        #expect(close(st.overall.rmse[1], ((0.0625 + 0 + 1) / 3).squareRoot()))
        #expect(report.figures().map(\.name) == ["mae_by_atoms_0", "mae_by_atoms_1", "parity_0", "parity_1"])
        #expect(XMLElements.parse(report.html()).error == nil)
        let table = st.table(unit: "eV", trainRange: 3...3)
        #expect(table.contains("extrap") && table.split(separator: "\n").count == 4)
    }

    @Test func inputsWithTheSameLabelMerge() throws {
        let dir = try TemporaryDirectory()
        let a = try dir.write("a.tsv", "ID\tCorrect\tPredict\tError\tAtoms\nx\t1\t2\t1\t5\n")
        let b = try dir.write("b.tsv", "ID\tCorrect\tPredict\tError\tAtoms\ny\t1\t1.5\t0.5\t20\n")
        var run = try ReportRun.load(a, label: "model")
        try run.merge(try ReportRun.load(b, label: "model"))
        let st = try #require(Report(runs: [run]).statistics[0])
        #expect(st.bins.map(\.atoms) == [5, 20])
        #expect(st.overall.mae == [0.75])
    }

    @Test func badInputsNameTheFileAndLine() throws {
        let dir = try TemporaryDirectory()
        let bad = try dir.write("bad.tsv", "ID\tCorrect\tPredict\tError\nx\t1\t2\t1\ny\t1\toops\t1\n")
        #expect(throws: QDFError("Predict is not a finite number: 'oops'", file: bad, line: 3)) {
            try ReportRun.load(bad)
        }
        let short = try dir.write("short.tsv", "ID\tCorrect\tPredict\tError\nx\t1\t2\n")
        #expect(throws: QDFError("3 fields, the header has 4", file: short, line: 2)) { try ReportRun.load(short) }
        let noCorrect = try dir.write("nc.tsv", "ID\tPredict\nx\t1\n")
        #expect(throws: QDFError.self) { try ReportRun.load(noCorrect) }
        let curve = try dir.write("c.tsv", "Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val(eV)\tMAE_test(eV)\n0\t1\t2\t3\t4\t5\n0\t1\t2\t3\t4\t5\n")
        #expect(throws: QDFError("epoch 0.0 does not follow epoch 0.0", file: curve, line: 3)) { try ReportRun.load(curve) }
        let other = try dir.write("o.tsv", "foo\tbar\n")
        #expect(throws: QDFError.self) { try ReportRun.load(other) }
        // An ID in none of the molecule files.
        let ok = try dir.write("ok.tsv", "ID\tCorrect\tPredict\tError\nx\t1\t2\t1\nz\t1\t2\t1\n")
        var t = try PredictionTable.read(path: ok)
        #expect(throws: QDFError("molecule 'z' has no atom count: it is in none of the --molecules files and the file has no Atoms column",
                                 file: ok, line: 3)) { try t.assignAtoms(["x": 4]) }
        #expect(parseAtomRange("3-14") == 3...14)
        #expect(parseAtomRange("14-3") == nil)
    }

    @Test(.enabled(if: Shared.available, Shared.skipMessage))
    func referencePredictionsAndLearningCurve() throws {
        // The reference's predictions of QM9under14atoms test, sized by the dataset file.
        let predPath = Shared.path("reference/reference_predictions_QM9under14atoms_test.tsv")
        var run = try ReportRun.load(predPath, label: "reference")
        let molecules = try readMolecules(Shared.dataset("QM9under14atoms_atomizationenergy_eV") + "/test.txt")
        try run.predictions!.assignAtoms(try atomCounts(moleculeFiles: [Shared.dataset("QM9under14atoms_atomizationenergy_eV") + "/test.txt"]))
        let curvePath = Shared.path("reference/reference_learning_curve_QM9under14atoms.tsv")
        try run.merge(try ReportRun.load(curvePath))
        let report = Report(runs: [run], trainRange: 3...14)
        let st = try #require(report.statistics[0])
        // Independently: the Error column of the reference file, grouped by the molecules' sizes.
        let tsv = try readTSV(predPath)
        let size = Dictionary(uniqueKeysWithValues: molecules.map { ($0.id, $0.atomCount) })
        var sums = [Int: (Double, Int)]()
        for r in tsv.rows { let n = size[r[0]]!; sums[n, default: (0, 0)].0 += Double(r[3])!; sums[n, default: (0, 0)].1 += 1 }
        #expect(st.overall.count == 1480)
        #expect(abs(st.overall.mae[0] - 0.05753) < 5e-6)
        for b in st.bins {
            #expect(b.count == sums[b.atoms]!.1)
            #expect(abs(b.mae[0] - sums[b.atoms]!.0 / Double(b.count)) < 1e-6, "size \(b.atoms)")
        }
        let curve = try readTSV(curvePath)
        let c = try #require(report.runs[0].curve)
        #expect(c.epoch.count == curve.rows.count && c.unit == "eV")
        #expect(c.maeVal.min() == curve.rows.map { Double($0[4])! }.min())
        #expect(XMLElements.parse(report.html()).error == nil)
    }
}
