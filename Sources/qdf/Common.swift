import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

let qdfVersion = QDFVersion.string

/// Prints to standard error.
func log(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Runs a command body and turns library errors into a clean message and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as QDFError {
        log("error: \(e.description)")
        throw ExitCode.failure
    }
}

/// True when standard error is a terminal (progress bars go there).
var stderrIsTTY: Bool { isatty(2) != 0 }

/// Flushes standard output (so per-epoch lines reach a pipe as they happen).
func flushStdout() { fflush(nil) }

/// The model at `path`, or the bundled model when no path is given (and says so on
/// standard error).
func loadModel(_ path: String?) throws -> QDFModel { try loadModelAndPath(path).model }

/// `loadModel`, with the path of the file the model came from.
func loadModelAndPath(_ path: String?) throws -> (model: QDFModel, path: String) {
    if let p = path { return (try QDFModel.load(path: p), p) }
    let b = try BundledModel.load()
    log("no --model given: using the bundled model, \(b.summary); see docs/model-card.md")
    return (b.model, b.path)
}

/// A source model for fine-tuning or probing: the file at `path`, or the bundled model for
/// nil or "bundled", with its file name and SHA-256 (recorded in the new model's metadata).
func loadSourceModel(_ path: String?, purpose: String) throws -> (model: QDFModel, path: String, name: String, sha256: String) {
    let p = path == nil || path == "bundled" ? try BundledResources.path(BundledResources.modelFile) : path!
    let bytes: Data
    do { bytes = try Data(contentsOf: URL(fileURLWithPath: p)) }
    catch { throw QDFError("cannot read the model \(purpose): \(error.localizedDescription)", file: p) }
    let model = try QDFModel(file: try SafetensorsFile.parse(bytes, path: p))
    return (model, p, (p as NSString).lastPathComponent, sha256Hex(bytes))
}

extension Precision: ExpressibleByArgument {}

extension FrameKind: ExpressibleByArgument {}

extension FineTuning.Head: ExpressibleByArgument {}

/// `--frame`: the frame molecules are placed in, overriding the model's (docs/model.md §17).
struct FrameOptions: ParsableArguments {
    @Option(help: "Place molecules as given (input) or in their canonical frame (canonical) before predicting. Default: the frame the model was trained in (its 'frame' metadata; input for the published model).")
    var frame: FrameKind?

    /// The model, placing molecules in the requested frame; a note on standard error when
    /// that differs from the frame it was trained in.
    func apply(to model: QDFModel, log shouldLog: Bool = true) -> QDFModel {
        guard let f = frame, f != model.hyper.frame else { return model }
        if shouldLog {
            log("note: --frame \(f.rawValue): this model was trained in the \(model.hyper.frame.rawValue) frame; " +
                (f == .canonical ? "predictions no longer depend on the orientation, but may differ from the model's own figures (docs/model.md §17)"
                                 : "predictions depend on the molecule's orientation"))
        }
        return model.placing(in: f)
    }
}
