import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct ReportCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One self-contained HTML report of runs: errors by molecule size, parity plot, learning curves.",
        discussion: """
        Each INPUT is a run directory (model.safetensors, learning_curve.tsv, predictions_test.tsv), \
        a predictions TSV (ID, Correct, Predict, Error, as `qdf predict` writes it) or a learning-curve \
        TSV. Inputs given the same --label are merged into one run (e.g. a model's test set and an \
        extrapolation set). Atom counts come from an Atoms column or from --molecules files.
        """)

    @Argument(help: "Run directories, predictions TSVs or learning-curve TSVs.")
    var inputs: [String]

    @Option(name: .shortAndLong, help: "The HTML file to write.")
    var output: String

    @Option(parsing: .upToNextOption, help: "Molecule files (QDF text or XYZ) giving the atom count of each ID.")
    var molecules: [String] = []

    @Option(help: "Training sizes shaded as the interpolation region, e.g. 3-14 (default: the run's train_atoms metadata).")
    var trainRange: String?

    @Option(help: "A label per input, in order (repeat the option); inputs with the same label are merged.")
    var label: [String] = []

    @Option(help: "The unit of the values (default: from the run's metadata or learning-curve header).")
    var unit: String?

    @Option(help: "Also write every figure as a PNG (1800 × 1200 px, 300 dpi at 6 × 4 in) into this folder.")
    var png: String?

    @Option(help: "Learning curves against 'epoch' or training time in 'hours' (from the Time(sec) column).")
    var curveAxis = "epoch"

    @Option(help: "The report's title.")
    var title = "QDF report"

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one input") }
        guard label.count <= inputs.count else {
            throw ValidationError("\(label.count) labels for \(inputs.count) inputs")
        }
        guard CurveAxis(rawValue: curveAxis) != nil else {
            throw ValidationError("--curve-axis must be epoch or hours, found '\(curveAxis)'")
        }
        if let t = trainRange, parseAtomRange(t) == nil {
            throw ValidationError("--train-range must look like 3-14, found '\(t)'")
        }
    }

    func run() throws {
        try reportingErrors {
            var runs = [ReportRun]()
            for (i, input) in inputs.enumerated() {
                let r = try ReportRun.load(input, label: i < label.count ? label[i] : nil)
                if let k = runs.firstIndex(where: { $0.label == r.label }) { try runs[k].merge(r) } else { runs.append(r) }
            }
            if !molecules.isEmpty {
                let counts = try atomCounts(moleculeFiles: molecules)
                for k in runs.indices where runs[k].predictions != nil { try runs[k].predictions!.assignAtoms(counts) }
            }
            for r in runs where r.predictions.map({ !$0.hasAllAtoms }) == true {
                log("note: no atom counts for '\(r.label)' (give --molecules): no error-by-size figure for it")
            }
            var report = Report(runs: runs, trainRange: trainRange.flatMap(parseAtomRange), unit: unit)
            report.title = title
            report.curveAxis = CurveAxis(rawValue: curveAxis)!
            let command = "qdf report " + CommandLine.arguments.dropFirst(2).map { a in
                a.contains(" ") || a.contains("'") ? "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'" : a
            }.joined(separator: " ")
            try writeAtomically(report.html(generatedBy: command), to: output)
            log("wrote \(output)")
            for (run, st) in zip(report.runs, report.statistics) {
                guard let st else { continue }
                var labels = report.labels
                if labels.units.isEmpty, let u = report.unit { labels.units = Array(repeating: u, count: st.outputs) }
                log("\(run.label): \(st.overall.count) molecules, " + labels.maePhrase(st.overall.mae))
                if !st.bySize.isEmpty { log(st.table(unit: report.unit, trainRange: report.trainRange, labels: report.labels)) }
            }
            if let dir = png {
                for p in try report.writePNGs(directory: dir) { log("wrote \(p)") }
            }
        }
    }
}
