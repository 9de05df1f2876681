import Foundation

// A training run's folder:
//   model.safetensors       the model after the last completed epoch (reference format + metadata)
//   learning_curve.tsv      Epoch, Time(sec), Loss_E, Loss_V, MAE_val(unit), MAE_test(unit)
//   predictions_test.tsv    ID, Correct, Predict, Error for the test set (PredictionWriter's tsv)
//   state.safetensors       everything needed to resume: parameters, Adam moments and step
//                           counts, RNG state, epoch and position inside it, options, dataset
// Every file is replaced atomically, and state.safetensors last, so a run killed at any
// moment resumes from its last checkpoint.

struct TrainingState {
    var datasetDirectory: String
    var epoch: Int
    var order: [Int]
    var nextBatch: Int
    var partialLossE: Double
    var partialLossV: Double
    var partialSeconds: Double
    var elapsedBefore: Double
    var rng: [UInt64]
    var adamSteps: [Int]
    var metadata: [String: String]
    var modelFile: SafetensorsFile
    var adamM: [Float] = []
    var adamV: [Float] = []
    /// The parameters' moving average (empty without EMA).
    var average: [Float] = []
    /// The CPU kinds (`GEMMChoice.cpuKey`) the run has trained on, in order; empty in a
    /// checkpoint written before they were recorded.
    var cpuKinds: [String] = []
}

/// A training run's folder and the paths of its files (created or opened by `Trainer`).
package struct RunDirectory: Sendable {
    /// The folder, path standardized.
    package let path: String
    /// The model after the last completed epoch.
    package var modelPath: String { path + "/model.safetensors" }
    /// The learning curve TSV (one row per epoch; times in seconds, losses and MAEs in the
    /// data set's unit, squared for losses).
    package var learningCurvePath: String { path + "/learning_curve.tsv" }
    /// The test-set predictions TSV of the last completed epoch.
    package var predictionsPath: String { path + "/predictions_test.tsv" }
    /// The resumable checkpoint (written last each epoch).
    package var statePath: String { path + "/state.safetensors" }

    /// A new run folder; refuses a folder that already holds a run.
    init(creating path: String) throws {
        self.path = (path as NSString).standardizingPath
        let fm = FileManager.default
        if fm.fileExists(atPath: self.path + "/state.safetensors") {
            throw QDFError("this folder already holds a training run; continue it with `qdf train --resume \(path)` or choose another --output", file: path)
        }
        do { try fm.createDirectory(atPath: self.path, withIntermediateDirectories: true) }
        catch { throw QDFError("cannot create the run folder: \(error.localizedDescription)", file: path) }
        guard fm.isWritableFile(atPath: self.path) else { throw QDFError("the run folder is not writable", file: path) }
    }

    /// The path only, nothing checked or created (ranks other than 0 of a process group,
    /// which never touch the folder).
    init(unchecked path: String) {
        self.path = (path as NSString).standardizingPath
    }

    init(existing path: String) throws {
        self.path = (path as NSString).standardizingPath
        guard FileManager.default.fileExists(atPath: self.path + "/state.safetensors") else {
            throw QDFError("no training state here (state.safetensors) to resume from", file: path)
        }
    }

    func learningCurveHeader(unit: String) -> String {
        "Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val(\(unit))\tMAE_test(\(unit))"
    }

    func writeEpoch(records: [EpochRecord], unit: String, predictions: [Prediction], model: QDFModel) throws {
        var curve = learningCurveHeader(unit: unit) + "\n"
        for r in records {
            curve += "\(r.epoch)\t\(r.seconds)\t\(r.lossE)\t\(r.lossV)\t\(r.maeVal)\t\(r.maeTest)\n"
        }
        try writeAtomically(curve, to: learningCurvePath)
        // The tsv of `qdf predict`, with the Correct and Error columns.
        let writer = PredictionWriter(format: .tsv, labels: OutputLabels(metadata: model.metadata, outputs: model.hyper.outputs),
                                      sink: try LineSink(path: predictionsPath), withCorrect: true)
        for p in predictions { try writer.write(p) }
        try writer.finish()
        try model.save(path: modelPath)
    }

    /// The rows of a learning-curve file's text (errors name `learningCurvePath`).
    func parseLearningCurve(_ text: String) throws -> [EpochRecord] {
        var out = [EpochRecord]()
        for (n, line) in text.split(separator: "\n").enumerated() where n > 0 {
            let f = line.split(separator: "\t").map { Double($0) }
            guard f.count == 6, f.allSatisfy({ $0 != nil }) else {
                throw QDFError("malformed learning-curve row", file: learningCurvePath, line: n + 1)
            }
            out.append(EpochRecord(epoch: Int(f[0]!), seconds: f[1]!, lossE: f[2]!, lossV: f[3]!, maeVal: f[4]!, maeTest: f[5]!))
        }
        return out
    }

    func writeState(_ s: TrainingState, model: QDFModel, adam: Adam) throws {
        var md = model.fileMetadata
        for (k, v) in s.metadata { md[k] = v }
        md["state.version"] = "1"
        md["state.dataset_dir"] = s.datasetDirectory
        md["state.epoch"] = String(s.epoch)
        md["state.next_batch"] = String(s.nextBatch)
        md["state.order"] = s.order.map(String.init).joined(separator: ",")
        md["state.partial_loss_e"] = "\(s.partialLossE)"
        md["state.partial_loss_v"] = "\(s.partialLossV)"
        md["state.partial_seconds"] = "\(s.partialSeconds)"
        md["state.elapsed_before"] = "\(s.elapsedBefore)"
        md["state.rng"] = s.rng.map(String.init).joined(separator: ",")
        md["state.adam_steps"] = s.adamSteps.map(String.init).joined(separator: ",")
        if !s.cpuKinds.isEmpty, let json = try? JSONEncoder().encode(s.cpuKinds) {
            md["state.cpu_kinds"] = String(decoding: json, as: UTF8.self)
        }
        var tensors = model.layout.entries.map { e in
            (name: e.name, tensor: Tensor(shape: e.shape, values: Array(model.parameters[e.range])))
        }
        tensors.append((name: "adam.m", tensor: Tensor(shape: [adam.m.count], values: adam.m)))
        tensors.append((name: "adam.v", tensor: Tensor(shape: [adam.v.count], values: adam.v)))
        if !s.average.isEmpty {
            tensors.append((name: "adam.ema", tensor: Tensor(shape: [s.average.count], values: s.average)))
        }
        try SafetensorsFile(tensors: tensors, metadata: md).write(path: statePath)
    }

    /// The training state held in a state file's contents (errors name `statePath`).
    func parseState(_ file: SafetensorsFile) throws -> TrainingState {
        let md = file.metadata
        func get(_ k: String) throws -> String {
            guard let v = md[k] else { throw QDFError("training state lacks '\(k)'", file: statePath) }
            return v
        }
        func ints(_ s: String) throws -> [Int] {
            if s.isEmpty { return [] }
            return try s.split(separator: ",").map {
                guard let v = Int($0) else { throw QDFError("training state: malformed integer list", file: statePath) }
                return v
            }
        }
        guard let epoch = Int(try get("state.epoch")), let nb = Int(try get("state.next_batch")),
              let le = Double(try get("state.partial_loss_e")), let lv = Double(try get("state.partial_loss_v")),
              let ps = Double(try get("state.partial_seconds")), let eb = Double(try get("state.elapsed_before")) else {
            throw QDFError("training state has malformed numbers", file: statePath)
        }
        let rng = try get("state.rng").split(separator: ",").compactMap { UInt64($0) }
        guard rng.count == 4 else { throw QDFError("training state has a malformed RNG state", file: statePath) }
        guard let m = file["adam.m"], let v = file["adam.v"] else {
            throw QDFError("training state lacks the optimizer moments", file: statePath)
        }
        let modelFile = SafetensorsFile(tensors: file.tensors.filter { !$0.name.hasPrefix("adam.") },
                                        metadata: md.filter { !$0.key.hasPrefix("state.") })
        var s = TrainingState(datasetDirectory: try get("state.dataset_dir"), epoch: epoch, order: try ints(try get("state.order")),
                              nextBatch: nb, partialLossE: le, partialLossV: lv, partialSeconds: ps, elapsedBefore: eb,
                              rng: rng, adamSteps: try ints(try get("state.adam_steps")), metadata: md, modelFile: modelFile)
        s.adamM = m.values
        s.adamV = v.values
        s.average = file["adam.ema"]?.values ?? []
        if let kinds = md["state.cpu_kinds"] {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(kinds.utf8)) else {
                throw QDFError("training state has a malformed 'state.cpu_kinds' (a JSON list of CPU names)", file: statePath)
            }
            s.cpuKinds = list
        }
        return s
    }
}
