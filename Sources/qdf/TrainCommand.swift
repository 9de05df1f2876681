import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// Set by SIGINT/SIGTERM: finish the current batch, checkpoint, exit.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

private func installStopHandlers() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { s in
            stopSignal = 1
            signal(s, SIG_DFL)  // a second signal stops at once
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a QDF model on a dataset folder (train.txt, val.txt, test.txt).",
        discussion: """
        After every epoch the run folder gets model.safetensors, learning_curve.tsv, \
        predictions_test.tsv and state.safetensors (all written atomically). Ctrl-C (or SIGTERM) \
        finishes the current batch, writes a checkpoint and prints the command that resumes it.
        """)

    @Argument(help: "Dataset folder with train.txt, val.txt and test.txt (QDF text format).")
    var dataset: String?

    @Option(name: .shortAndLong, help: "Run folder for the model, learning curve, predictions and state.")
    var output: String?

    @Option(help: "Resume the run in this folder from its last checkpoint.")
    var resume: String?

    @Option(help: "Basis set (sets the number of functions per atom).") var basisSet = "6-31G"
    @Option(help: "Radius of each atom's grid sphere (Å).") var radius = 0.75
    @Option(help: "Grid interval (Å).") var gridInterval = 0.3
    @Option(help: "Number of molecular orbitals (width of the energy functional).") var dim = 250
    @Option(help: "Layers of the energy functional.") var layerFunctional = 3
    @Option(name: .customLong("hidden-hk"), help: "Width of the Hohenberg–Kohn map.") var hiddenHK = 250
    @Option(name: .customLong("layer-hk"), help: "Layers of the Hohenberg–Kohn map.") var layerHK = 3
    @Option(help: "Readout: sum (extensive, e.g. energies) or mean (intensive, e.g. HOMO/LUMO).") var operation = "sum"
    @Option(help: "Molecules per mini-batch.") var batchSize = 4
    @Option(help: "Learning rate.") var lr = 1e-4
    @Option(help: "Factor applied to the learning rate every --step-size epochs.") var lrDecay = 0.5
    @Option(help: "Epochs between learning-rate decays.") var stepSize = 200
    @Option(help: "Epochs.") var epochs = 2000
    @Option(help: "Random seed (initialization and shuffling).") var seed: UInt64 = 1729
    @Flag(name: .customLong("no-hk-map"), help: "Train on E alone (the conventional baseline, no HK map).") var noHKMap = false
    @Option(help: "Memory for precomputed geometry, in GiB.") var cacheGib = 8.0
    @OptionGroup var chemistry: ChemistryOptions

    func validate() throws {
        if resume == nil {
            guard dataset != nil else { throw ValidationError("give a dataset folder, or --resume RUN_DIR") }
            guard output != nil else { throw ValidationError("give --output RUN_DIR") }
            guard Readout(rawValue: operation) != nil else { throw ValidationError("--operation must be sum or mean") }
        } else if dataset != nil || output != nil {
            throw ValidationError("--resume takes everything from the run folder; give no dataset or --output")
        }
    }

    func run() throws {
        try reportingErrors {
            let trainer: Trainer
            if let r = resume {
                trainer = try Trainer.resume(runDirectory: r)
                log("resuming \(r) at epoch \(trainer.records.count)")
            } else {
                var o = TrainingOptions()
                o.hyper = Hyperparameters(basisSet: try BasisSet(basisSet), radius: radius, gridInterval: gridInterval,
                                          dim: dim, layerFunctional: layerFunctional, hiddenHK: hiddenHK, layerHK: layerHK,
                                          operation: Readout(rawValue: operation)!)
                o.batchSize = batchSize; o.learningRate = lr; o.lrDecay = lrDecay; o.stepSize = stepSize
                o.epochs = epochs; o.seed = seed; o.hkMap = !noHKMap
                o.cacheBytes = Int(cacheGib * Double(1 << 30))
                let start = Date()
                // The chemistry checks on every molecule of the data set (any element), so that
                // charged, open-shell or implausible molecules are found before training.
                // Allowed issues: the first three are shown, then a count.
                var allowedIssues = 0
                for name in ["train.txt", "val.txt", "test.txt"] {
                    let path = (dataset! as NSString).appendingPathComponent(name)
                    guard FileManager.default.fileExists(atPath: path) else { continue }
                    let reader = chemistry.checked(try openMoleculeFile(path), check: MoleculeCheck()) { w in
                        allowedIssues += 1
                        if allowedIssues <= 3 { log("warning: \(w.description)") }
                    }
                    while try reader.next() != nil {}
                }
                if allowedIssues > 3 { log("warning: \(allowedIssues) allowed chemistry issues in the data set in all (qdf check lists them)") }
                let data = try Dataset.load(directory: dataset!)
                trainer = try Trainer(dataset: data, options: o, runDirectory: output!)
                log(String(format: "%@: %d train, %d val, %d test molecules, %d output(s), %d orbital types; %@ parameters; setup %.1f s",
                           data.name, data.train.count, data.val.count, data.test.count, data.outputs,
                           trainer.model.dictionary.count, "\(trainer.model.layout.totalCount)", Date().timeIntervalSince(start)))
            }
            installStopHandlers()
            let unit = trainer.dataset.unit
            print("Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val(\(unit))\tMAE_test(\(unit))")
            flushStdout()
            let progress = ProgressBar(enabled: stderrIsTTY)
            let outcome = try trainer.train(shouldStop: { stopSignal != 0 }) { event in
                switch event {
                case let .batch(epoch, batch, batches, seconds):
                    progress.update(label: "epoch \(epoch)", done: batch, total: batches, seconds: seconds)
                case let .evaluating(epoch):
                    progress.message("epoch \(epoch): evaluating val and test")
                case let .epoch(r):
                    progress.clear()
                    print("\(r.epoch)\t\(r.seconds)\t\(r.lossE)\t\(r.lossV)\t\(r.maeVal)\t\(r.maeTest)")
                    flushStdout()
                }
            }
            progress.clear()
            switch outcome {
            case .finished:
                log("done: \(trainer.run.path)/model.safetensors")
            case let .interrupted(epoch, batch):
                log("stopped in epoch \(epoch) after batch \(batch); checkpoint written. Resume with:\n  qdf train --resume \(trainer.run.path)")
                throw ExitCode(130)
            }
        }
    }
}

/// A one-line progress bar with ETA on standard error (only on a terminal).
final class ProgressBar {
    let enabled: Bool
    private var lastDraw = Date.distantPast
    init(enabled: Bool) { self.enabled = enabled }

    func update(label: String, done: Int, total: Int, seconds: Double) {
        guard enabled else { return }
        let now = Date()
        if done < total && now.timeIntervalSince(lastDraw) < 0.2 { return }
        lastDraw = now
        let width = 30
        let filled = total > 0 ? width * done / total : 0
        let eta = done > 0 ? seconds / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "\r%@ %@ %d/%d  %.0f s, ETA %@ ", label, bar, done, total, seconds, formatDuration(eta))
        FileHandle.standardError.write(Data(line.utf8))
    }

    func message(_ s: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
    if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return "\(t)s"
}
