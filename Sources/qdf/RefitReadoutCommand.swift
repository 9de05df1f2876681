import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

struct RefitReadout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refit-readout",
        abstract: "Refit a trained model's property readout (W_property and its bias) by least squares on the training set.",
        discussion: """
        The energy functional's features are kept; only the last linear layer is replaced by \
        the least-squares fit to the training molecules' values (a few seconds to a minute). \
        This removes the offset Adam's last steps leave in the readout. Reports the MAE \
        before and after on train.txt and, when present, on val.txt (choose by validation, \
        never by test). The input model is not changed.
        """)

    @Option(name: .long, help: "The trained model (safetensors).")
    var model: String

    @Argument(help: "The dataset folder (train.txt is fitted; val.txt, if present, is reported).")
    var dataset: String

    @Option(name: .shortAndLong, help: "Where to write the refitted model.")
    var output: String

    @Option(help: "Ridge, relative to the diagonal of the normal equations.")
    var ridge = 1e-7

    @OptionGroup var frameOptions: FrameOptions

    func validate() throws {
        guard ridge >= 0, ridge.isFinite else { throw ValidationError("--ridge must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let start = Date()
            // With --frame, the refit is made in that frame and the refitted model records it.
            let m = frameOptions.apply(to: try QDFModel.load(path: model))
            let train = try readMolecules(dataset + "/train.txt")
            let r = try ReadoutRefit.fit(model: m, molecules: train, ridge: ridge)
            var refitted = m
            refitted.setReadout(weight: r.weight, bias: r.bias)
            let unit = m.metadata["unit"].map { " \($0)" } ?? ""
            func f(_ v: [Double]) -> String { v.map { String(format: "%.5f", $0) }.joined(separator: " / ") + unit }
            var summary = "least squares on \(r.molecules) molecules of \((dataset as NSString).lastPathComponent)/train.txt "
                + "(ridge \(ridge)); train MAE \(f(r.maeBefore)) -> \(f(r.maeAfter))"
            log("train: \(r.molecules) molecules, MAE \(f(r.maeBefore)) before, \(f(r.maeAfter)) after")
            let valPath = dataset + "/val.txt"
            if FileManager.default.fileExists(atPath: valPath) {
                let val = try readMolecules(valPath)
                func mae(_ model: QDFModel) throws -> [Double] {
                    var errors = ErrorSums(outputs: m.hyper.outputs)
                    for p in try Predictor(model: model).predict(val) { errors.add(predicted: p.predicted, correct: p.correct) }
                    return errors.mae
                }
                let before = try mae(m), after = try mae(refitted)
                log("val:   \(val.count) molecules, MAE \(f(before)) before, \(f(after)) after")
                summary += "; val MAE \(f(before)) -> \(f(after))"
            }
            refitted.metadata["readout_refit"] = summary
            try refitted.save(path: output)
            log(String(format: "wrote %@ (%.1f s)", output, Date().timeIntervalSince(start)))
        }
    }
}
