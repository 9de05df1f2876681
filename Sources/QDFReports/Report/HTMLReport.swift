import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity

// The report: statistics of every run, its figures, and one self-contained HTML file
// (inline SVG and CSS; no scripts, no network), well-formed XML (XHTML syntax).

public struct Report: Sendable {
    /// The runs (fixed at creation: `statistics` is computed from them).
    public let runs: [ReportRun]
    /// The training sizes, shaded as the interpolation region.
    public var trainRange: ClosedRange<Int>?
    public var unit: String?
    /// The outputs' names and units (from the first run whose model metadata has a
    /// `property` key; with an explicit `unit`, that unit for every output).
    public var labels: OutputLabels
    public var title = "QDF report"
    /// The learning curves' x axis.
    public var curveAxis = CurveAxis.epoch
    /// Per run: error statistics of its predictions (nil without predictions).
    public let statistics: [ErrorBySize?]

    /// `trainRange` and `unit` default to the first run whose metadata (or learning-curve
    /// header) gives them.
    public init(runs: [ReportRun], trainRange: ClosedRange<Int>? = nil, unit: String? = nil) {
        self.runs = runs
        self.trainRange = trainRange ?? runs.lazy.compactMap(\.trainRange).first
        self.unit = unit ?? runs.lazy.compactMap(\.unit).first
        statistics = runs.map { $0.predictions?.statistics() }
        let p = runs.compactMap { $0.predictions?.outputs }.max() ?? 0
        var l = runs.lazy.filter { $0.metadata["property"] != nil }.first
            .map { OutputLabels(metadata: $0.metadata, outputs: p) } ?? OutputLabels(names: [], units: [])
        if let u = unit { l.units = Array(repeating: u, count: p) }
        labels = l
    }

    /// The unit of output q: its own when the metadata names one per output, else `unit`.
    func unit(output q: Int) -> String? { labels.unit(q) ?? unit }

    /// The number of outputs (the largest over runs with predictions).
    public var outputs: Int { runs.compactMap { $0.predictions?.outputs }.max() ?? 0 }

    /// " mu" (the property's name) or, without names, " [q]" for several outputs.
    func outputName(_ q: Int) -> String { labels.name(q).map { " \($0)" } ?? (outputs > 1 ? " [\(q)]" : "") }
    func fileSuffix(_ q: Int) -> String { outputs > 1 ? "_\(q)" : "" }

    /// The series of the MAE-by-size figure for output q (runs whose atom counts are known).
    public func sizeSeries(output q: Int) -> [SizeSeries] {
        runs.indices.compactMap { r in
            guard let st = statistics[r], q < st.outputs, !st.bySize.isEmpty else { return nil }
            return SizeSeries(label: runs[r].label, bins: st.bins.map {
                SizeBin(atoms: $0.atoms, count: $0.count, mae: [$0.mae[q]], rmse: [$0.rmse[q]]) }, color: .series(r))
        }
    }

    public func paritySeries(output q: Int) -> [ParitySeries] {
        runs.indices.compactMap { r in
            guard let p = runs[r].predictions, q < p.outputs else { return nil }
            return ParitySeries(label: runs[r].label, ids: p.ids, correct: (0..<p.count).map { p.correct($0, q) },
                                predicted: (0..<p.count).map { p.predicted($0, q) }, color: .series(r))
        }
    }

    public var curveSeries: [CurveSeries] {
        runs.indices.compactMap { r in runs[r].curve.map { CurveSeries(label: runs[r].label, curve: $0, color: .series(r)) } }
    }

    /// The figures, each with a file stem for `--png`.
    public func figures() -> [(name: String, figure: Figure)] {
        var out = [(String, Figure)]()
        for q in 0..<outputs {
            let s = sizeSeries(output: q)
            if !s.isEmpty {
                out.append(("mae_by_atoms\(fileSuffix(q))",
                            maeBySizeFigure(s, trainRange: trainRange, unit: unit(output: q), outputName: outputName(q),
                                            id: "mae-by-size\(fileSuffix(q))")))
            }
        }
        for q in 0..<outputs {
            out.append(("parity\(fileSuffix(q))", parityFigure(paritySeries(output: q), unit: unit(output: q),
                                                               outputName: outputName(q), id: "parity\(fileSuffix(q))")))
        }
        let c = curveSeries
        if !c.isEmpty { out.append(("learning_curves", learningCurveFigure(c, unit: labels.commonUnit ?? unit, axis: curveAxis))) }
        return out
    }

    /// Writes every figure as `<dir>/<name>.png`; returns the paths.
    public func writePNGs(directory: String, scale: Double = 3) throws -> [String] {
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            catch { throw QDFError("cannot create the folder: \(error.localizedDescription)", file: directory) }
        } else if !isDir.boolValue {
            throw QDFError("not a folder", file: directory)
        }
        return try figures().map { name, fig in
            let p = (directory as NSString).appendingPathComponent(name + ".png")
            try fig.writePNG(path: p, scale: scale)
            return p
        }
    }

    // MARK: - HTML

    static let css = """
    body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
    h1 { font-size: 1.6em; margin-bottom: 0.2em; }
    h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
    p.meta { color: #555; font-size: 0.9em; }
    table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
    th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
    th { background: #f2f2f2; }
    td.l, th.l { text-align: left; }
    tr.extrap td { background: #fff4e8; }
    figure { margin: 1em 0; }
    figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
    figcaption { font-size: 0.88em; color: #444; max-width: 600px; }
    .row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
    code { font-size: 0.95em; }
    """

    func f(_ v: Double, _ digits: Int = 5) -> String { v.isFinite ? String(format: "%.\(digits)f", v) : "–" }

    /// The report as one self-contained HTML document.
    public func html(generatedBy: String = "qdf report") -> String {
        let u = unit.map { " (\(xmlEscape($0)))" } ?? ""
        var h = "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
        h += "<meta charset=\"utf-8\"/>\n<title>\(xmlEscape(title))</title>\n<style>\n\(Report.css)\n</style>\n</head>\n<body>\n"
        h += "<h1>\(xmlEscape(title))</h1>\n<p class=\"meta\">Runs: "
        h += runs.map { "<b>\(xmlEscape($0.label))</b>" }.joined(separator: ", ")
        if !labels.names.isEmpty {
            h += ". Propert\(labels.names.count == 1 ? "y" : "ies"): " + labels.names.indices.map { q in
                xmlEscape(labels.names[q]) + (unit(output: q).map { " (\(xmlEscape($0)))" } ?? "")
            }.joined(separator: ", ")
        }
        if let t = trainRange { h += ". Training sizes: \(t.lowerBound)–\(t.upperBound) atoms" }
        h += ". Generated by <code>\(xmlEscape(generatedBy))</code>.</p>\n"
        let figs = Dictionary(figures().map { ($0.name, $0.figure) }, uniquingKeysWith: { a, _ in a })

        // Overall errors.
        if statistics.contains(where: { $0 != nil }) {
            h += "<h2>Overall errors</h2>\n<table class=\"overall\">\n<tr><th class=\"l\">run</th>"
            if outputs > 1 { h += "<th>output</th>" }
            h += "<th>molecules</th><th>MAE\(u)</th><th>RMSE\(u)</th><th>max |error|\(u)</th>"
            if trainRange != nil { h += "<th>MAE, training sizes\(u)</th><th>MAE, extrapolation\(u)</th>" }
            h += "</tr>\n"
            for (run, st) in zip(runs, statistics) {
                guard let st else { continue }
                for q in 0..<st.outputs {
                    h += "<tr data-run=\"\(xmlEscape(run.label))\" data-output=\"\(q)\"><td class=\"l\">\(xmlEscape(run.label))</td>"
                    if outputs > 1 { h += "<td>\(xmlEscape(labels.name(q) ?? String(q)))</td>" }
                    h += "<td>\(st.overall.count)</td><td class=\"mae\">\(f(st.overall.mae[q]))</td>"
                    h += "<td class=\"rmse\">\(f(st.overall.rmse[q]))</td><td>\(f(st.overall.maximum[q]))</td>"
                    if let t = trainRange {
                        let (inside, outside) = regionMAE(st, q: q, range: t)
                        h += "<td class=\"mae-train\">\(inside.map { f($0) } ?? "–")</td>"
                        h += "<td class=\"mae-extrap\">\(outside.map { f($0) } ?? "–")</td>"
                    }
                    h += "</tr>\n"
                }
            }
            h += "</table>\n"
        }

        // MAE by size.
        for q in 0..<outputs {
            let series = sizeSeries(output: q)
            guard let fig = figs["mae_by_atoms\(fileSuffix(q))"] else { continue }
            h += "<h2>Error by number of atoms\(xmlEscape(outputName(q)))</h2>\n<div class=\"row\">\n<figure>\n\(fig.svg())"
            h += "<figcaption>MAE per number of atoms (top) and molecules per size (bottom)."
            if let t = trainRange {
                h += " Shaded blue: the training sizes \(t.lowerBound)–\(t.upperBound) (interpolation); "
                h += "shaded orange: sizes outside them (extrapolation)."
            }
            h += " Pale points: sizes with fewer than 10 molecules."
            h += "</figcaption>\n</figure>\n"
            h += "<table class=\"by-size\">\n<tr><th>atoms</th>"
            for s in series { h += "<th>\(xmlEscape(s.label)): n</th><th>MAE\(u)</th>" }
            h += "</tr>\n"
            let sizes = Set(series.flatMap { $0.bins.map(\.atoms) }).sorted()
            for n in sizes {
                let extrap = trainRange.map { !$0.contains(n) } ?? false
                h += "<tr\(extrap ? " class=\"extrap\"" : "")><td>\(n)</td>"
                for s in series {
                    if let b = s.bins.first(where: { $0.atoms == n }) {
                        h += "<td>\(b.count)</td><td>\(f(b.mae[0]))</td>"
                    } else { h += "<td></td><td></td>" }
                }
                h += "</tr>\n"
            }
            h += "</table>\n</div>\n"
        }
        let missing = zip(runs, statistics).filter { $0.1 != nil && $0.1!.bySize.isEmpty }.map(\.0.label)
        if !missing.isEmpty {
            h += "<p class=\"meta\">No atom counts for \(missing.map(xmlEscape).joined(separator: ", ")): "
            h += "give the molecule files with <code>--molecules</code> (or an Atoms column) to see the error by size.</p>\n"
        }

        // Parity.
        if outputs > 0 {
            h += "<h2>Parity</h2>\n<div class=\"row\">\n"
            for q in 0..<outputs {
                if let fig = figs["parity\(fileSuffix(q))"] {
                    h += "<figure>\n\(fig.svg())<figcaption>Predicted against correct values\(xmlEscape(outputName(q))); "
                    h += "the dashed line is y = x.</figcaption>\n</figure>\n"
                }
            }
            h += "</div>\n"
        }

        // Learning curves.
        if let fig = figs["learning_curves"] {
            h += "<h2>Learning curves</h2>\n<figure>\n\(fig.svg())"
            h += "<figcaption>Left: training losses Loss_E (solid) and Loss_V (dashed) per epoch. "
            h += "Right: MAE on the validation (solid) and test (dashed) sets. Both axes of values are logarithmic.</figcaption>\n</figure>\n"
            h += "<table class=\"curves\">\n<tr><th class=\"l\">run</th><th>epochs</th><th>last Loss_E</th><th>last Loss_V</th>"
            h += "<th>last MAE_val\(u)</th><th>last MAE_test\(u)</th><th>best MAE_val\(u)</th><th>at epoch</th><th>MAE_test there\(u)</th></tr>\n"
            for s in curveSeries {
                let c = s.curve
                let best = c.maeVal.indices.filter { c.maeVal[$0].isFinite }.min { c.maeVal[$0] < c.maeVal[$1] }
                h += "<tr data-run=\"\(xmlEscape(s.label))\"><td class=\"l\">\(xmlEscape(s.label))</td><td>\(c.epoch.count)</td>"
                h += "<td>\(f(c.lossE.last!, 3))</td><td>\(f(c.lossV.last!, 3))</td>"
                h += "<td>\(f(c.maeVal.last!))</td><td>\(f(c.maeTest.last!))</td>"
                if let i = best {
                    h += "<td class=\"best-val\">\(f(c.maeVal[i]))</td><td>\(dataNumber(c.epoch[i]).replacingOccurrences(of: ".0", with: ""))</td>"
                    h += "<td class=\"test-at-best\">\(f(c.maeTest[i]))</td>"
                } else { h += "<td>–</td><td>–</td><td>–</td>" }
                h += "</tr>\n"
            }
            h += "</table>\n"
        }

        // Inputs.
        h += "<h2>Inputs</h2>\n<ul>\n"
        for r in runs {
            h += "<li><b>\(xmlEscape(r.label))</b>: " + r.sources.map { "<code>\(xmlEscape($0))</code>" }.joined(separator: ", ")
            let md = ["dataset", "train_atoms", "unit"].compactMap { k in r.metadata[k].map { "\(k) = \($0)" } }
            if !md.isEmpty { h += " (" + xmlEscape(md.joined(separator: ", ")) + ")" }
            h += "</li>\n"
        }
        h += "</ul>\n</body>\n</html>\n"
        return h
    }

    /// MAE over the sizes inside and outside the training range (nil when none).
    public func regionMAE(_ st: ErrorBySize, q: Int, range: ClosedRange<Int>) -> (Double?, Double?) {
        var inSum = 0.0, inN = 0, outSum = 0.0, outN = 0
        for (n, s) in st.bySize {
            if range.contains(n) { inSum += s.absolute[q]; inN += s.count } else { outSum += s.absolute[q]; outN += s.count }
        }
        return (inN > 0 ? inSum / Double(inN) : nil, outN > 0 ? outSum / Double(outN) : nil)
    }
}
