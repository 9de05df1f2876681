import Foundation

// Training (docs/model.md §8): for every mini-batch, the E step (Loss_E into ζ,
// coefficients, W_functional, W_property; one Adam step), then the V step with the
// updated parameters (Loss_V into ζ, coefficients, W_density, W_HK, W_potential; one
// Adam step). After every epoch: MAE on val and test, a learning-curve row, test
// predictions, the model and a resumable state, each written atomically.

/// Hyperparameters and training options, with the defaults of docs/model.md §9.
public struct TrainingOptions: Sendable, Equatable {
    /// The architecture; `outputs` is replaced by the data set's P when training starts.
    public var hyper = Hyperparameters()
    /// B, molecules per mini-batch (the last batch of an epoch may be smaller).
    public var batchSize = 4
    /// lr, Adam's initial learning rate.
    public var learningRate: Double = 1e-4
    /// The StepLR factor: lr_e = lr · lrDecay^⌊e / stepSize⌋.
    public var lrDecay: Double = 0.5
    /// Epochs between learning-rate decays.
    public var stepSize = 200
    /// Epochs to train.
    public var epochs = 2000
    /// Seeds the initialization (seed) and the epoch shuffles (seed + 1).
    public var seed: UInt64 = 1729
    /// false: train on E alone (the "conventional" baseline, no HK map).
    public var hkMap = true
    /// Bytes of precomputed geometry kept in memory; beyond it geometry is recomputed per batch.
    public var cacheBytes = 8 << 30

    /// The defaults.
    public init() {}

    /// Throws `QDFError` (no file/line) if `hyper.validate()` fails or the batch size, step
    /// size or epoch count is not positive, or lr or lr_decay is not positive and finite.
    public func validate() throws {
        try hyper.validate()
        guard batchSize > 0 else { throw QDFError("batch size must be positive") }
        guard learningRate > 0, learningRate.isFinite else { throw QDFError("learning rate must be positive") }
        guard lrDecay > 0, lrDecay.isFinite else { throw QDFError("lr decay must be positive") }
        guard stepSize > 0 else { throw QDFError("step size must be positive") }
        guard epochs > 0 else { throw QDFError("epochs must be positive") }
    }

    /// As strings for the model and state metadata.
    var metadata: [String: String] {
        ["batch_size": String(batchSize), "lr": "\(learningRate)", "lr_decay": "\(lrDecay)",
         "step_size": String(stepSize), "epochs": String(epochs), "seed": String(seed),
         "hk_map": hkMap ? "true" : "false", "cache_bytes": String(cacheBytes)]
    }

    init(metadata md: [String: String], hyper: Hyperparameters) throws {
        func get(_ k: String) throws -> String {
            guard let v = md[k] else { throw QDFError("training state lacks '\(k)'") }
            return v
        }
        self.hyper = hyper
        guard let b = Int(try get("batch_size")), let lr = Double(try get("lr")), let d = Double(try get("lr_decay")),
              let s = Int(try get("step_size")), let e = Int(try get("epochs")), let sd = UInt64(try get("seed")) else {
            throw QDFError("training state has malformed options")
        }
        batchSize = b; learningRate = lr; lrDecay = d; stepSize = s; epochs = e; seed = sd
        hkMap = (md["hk_map"] ?? "true") == "true"
        cacheBytes = Int(md["cache_bytes"] ?? "") ?? (8 << 30)
    }
}

/// One row of the learning curve (docs/model.md §8).
public struct EpochRecord: Sendable, Equatable {
    /// The epoch, counted from 0.
    public var epoch: Int
    /// Cumulative wall-clock seconds up to the end of this epoch, evaluation included.
    public var seconds: Double
    /// Σ over the epoch's batches of Loss_E (property unit², e.g. eV²; a sum, not a mean).
    public var lossE: Double
    /// Σ over the epoch's batches of Loss_V (0 without the HK map).
    public var lossV: Double
    /// Validation MAE over molecules × outputs (property unit).
    public var maeVal: Double
    /// Test MAE over molecules × outputs (property unit).
    public var maeTest: Double
}

/// What the trainer reports while it runs: `batch` after each mini-batch (1-based `batch` of
/// `batches`, seconds so far in the epoch), `evaluating` before the epoch's val/test
/// evaluation, `epoch` once its record and files are written.
public enum TrainingEvent {
    case batch(epoch: Int, batch: Int, batches: Int, epochSeconds: Double)
    case epoch(EpochRecord)
    case evaluating(epoch: Int)
}

/// How `Trainer.train` ended.
public enum TrainingOutcome: Equatable {
    /// All `options.epochs` epochs are done.
    case finished
    /// Stopped on request after a batch; a checkpoint was written. `batch` is the number of
    /// batches completed in `epoch` (0 when stopped between epochs).
    case interrupted(epoch: Int, batch: Int)
}

/// Trains a model on a data set into a run folder, epoch by epoch, resumably
/// (docs/model.md §8). Mutable state: use from one thread at a time.
public final class Trainer {
    /// The data set trained on.
    public let dataset: Dataset
    /// The options (with `hyper.outputs` set to the data set's P).
    public let options: TrainingOptions
    /// The run folder the trainer writes.
    public let run: RunDirectory
    /// The model being trained: the trainer owns it and updates its parameters in place.
    public private(set) var model: QDFModel
    /// The optimizer (its moments and step counts are checkpointed).
    public let adam: Adam
    let stepper: TrainingStep
    let evalEngines: WorkerPool<Engine>
    var rng: RandomGenerator
    /// The learning curve so far.
    public private(set) var records: [EpochRecord] = []
    /// Position inside the current epoch (for checkpoints taken mid-epoch).
    var epoch = 0
    var order: [Int] = []
    var nextBatch = 0
    var partialLossE = 0.0, partialLossV = 0.0, partialSeconds = 0.0
    /// Seconds of all completed epochs (the learning curve's time column is cumulative).
    var elapsedBefore = 0.0

    var trainGeometry: GeometryStore
    var valGeometry: GeometryStore
    var testGeometry: GeometryStore

    /// A new run: a freshly initialized model (seed), its dictionary from the data set, and a
    /// first checkpoint in `runDirectory` (created if needed). Throws `QDFError` for invalid
    /// options, a folder that already holds a run or cannot be written, or an I/O failure.
    public convenience init(dataset: Dataset, options: TrainingOptions, runDirectory: String) throws {
        try options.validate()
        var hyper = options.hyper
        hyper.outputs = dataset.outputs
        var opts = options
        opts.hyper = hyper
        let dict = dataset.orbitalDictionary(basis: hyper.basisSet)
        let model = try QDFModel(hyper: hyper, dictionary: dict, metadata: [:], seed: options.seed)
        try self.init(dataset: dataset, options: opts, model: model, run: try RunDirectory(creating: runDirectory))
        rng = RandomGenerator(seed: options.seed &+ 1)
        // A checkpoint before the first batch: a run killed at any moment can be resumed.
        try writeCheckpoint()
    }

    init(dataset: Dataset, options: TrainingOptions, model: QDFModel, run: RunDirectory) throws {
        self.dataset = dataset
        self.options = options
        self.run = run
        var model = model
        model.metadata["dataset"] = dataset.name
        for (k, v) in dataset.modelMetadata { model.metadata[k] = v }  // property, unit, property_kind
        model.metadata["train_atoms"] = dataset.trainAtomRange
        model.metadata["source"] = "qdf-swift \(QDFVersion.string)"
        for (k, v) in options.metadata { model.metadata[k] = v }
        self.model = model
        adam = Adam(layout: model.layout, learningRate: Float(options.learningRate))
        stepper = TrainingStep(architecture: model.architecture)
        let architecture = model.architecture
        evalEngines = WorkerPool(count: defaultWorkers) { Engine(architecture: architecture) }
        rng = RandomGenerator(seed: options.seed &+ 1)
        let budget = options.cacheBytes
        trainGeometry = try GeometryStore(architecture: architecture, molecules: dataset.train, withPotential: options.hkMap, budget: budget)
        valGeometry = try GeometryStore(architecture: architecture, molecules: dataset.val, withPotential: false,
                                        budget: max(0, budget - trainGeometry.cachedBytes))
        testGeometry = try GeometryStore(architecture: architecture, molecules: dataset.test, withPotential: false,
                                         budget: max(0, budget - trainGeometry.cachedBytes - valGeometry.cachedBytes))
    }

    /// Resumes the run in `runDirectory` from its last checkpoint, reloading the data set
    /// from the folder recorded in it. Throws `QDFError` (with the file) if there is no
    /// state, it is malformed or no longer matches the model or the training set.
    public static func resume(runDirectory: String) throws -> Trainer {
        let run = try RunDirectory(existing: runDirectory)
        let state = try run.readState()
        let dataset = try Dataset.load(directory: state.datasetDirectory)
        let model = try QDFModel(file: state.modelFile)
        let options = try TrainingOptions(metadata: state.metadata, hyper: model.hyper)
        let t = try Trainer(dataset: dataset, options: options, model: model, run: run)
        try t.restore(state)
        return t
    }

    /// The learning rate of an epoch (counted from 0): lr · decay^⌊epoch / step_size⌋.
    public func learningRate(epoch: Int) -> Float {
        Float(options.learningRate * pow(options.lrDecay, Double(epoch / options.stepSize)))
    }

    /// Runs epochs until `options.epochs`, or until `shouldStop` answers true after a batch
    /// (then a checkpoint is written). Each epoch writes the learning curve, test predictions,
    /// model and state atomically. Throws `QDFError` (file: the run folder) when a loss or
    /// the validation MAE is not finite, keeping the last good checkpoint; I/O errors pass through.
    public func train(shouldStop: () -> Bool = { false }, report: (TrainingEvent) -> Void = { _ in }) throws -> TrainingOutcome {
        let n = dataset.train.count
        let B = options.batchSize
        let batches = (n + B - 1) / B
        while epoch < options.epochs {
            if order.isEmpty {
                order = Array(0..<n)
                for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextIndex(i + 1)) }
                nextBatch = 0; partialLossE = 0; partialLossV = 0; partialSeconds = 0
            }
            adam.learningRate = learningRate(epoch: epoch)
            var batchStart = Date()
            while nextBatch < batches {
                let idx = Array(order[(nextBatch * B)..<min(n, (nextBatch + 1) * B)])
                let geoms = try trainGeometry.geometries(idx)
                let (le, lv) = try step(geoms)
                partialLossE += le
                partialLossV += lv
                nextBatch += 1
                let now = Date()
                partialSeconds += now.timeIntervalSince(batchStart)
                batchStart = now
                report(.batch(epoch: epoch, batch: nextBatch, batches: batches, epochSeconds: partialSeconds))
                if shouldStop() && nextBatch < batches {
                    try writeCheckpoint()
                    return .interrupted(epoch: epoch, batch: nextBatch)
                }
            }
            report(.evaluating(epoch: epoch))
            let evalStart = Date()
            let maeVal = try evaluate(valGeometry, molecules: dataset.val).mae
            let test = try evaluate(testGeometry, molecules: dataset.test)
            partialSeconds += Date().timeIntervalSince(evalStart)
            let record = EpochRecord(epoch: epoch, seconds: elapsedBefore + partialSeconds, lossE: partialLossE,
                                     lossV: partialLossV, maeVal: maeVal, maeTest: test.mae)
            guard record.lossE.isFinite, record.lossV.isFinite, maeVal.isFinite else {
                throw QDFError("training diverged in epoch \(epoch) (Loss_E \(record.lossE), Loss_V \(record.lossV)); the last good checkpoint (epoch \(epoch - 1)) is kept — try a smaller --lr", file: run.path)
            }
            records.append(record)
            elapsedBefore = record.seconds
            epoch += 1
            order = []; nextBatch = 0
            try run.writeEpoch(records: records, unit: dataset.unit, predictions: test.rows, model: model)
            try writeCheckpoint()
            report(.epoch(record))
            if shouldStop() && epoch < options.epochs { return .interrupted(epoch: epoch, batch: 0) }
        }
        return .finished
    }

    /// One mini-batch: the E step, then the V step. Returns (Loss_E, Loss_V).
    func step(_ geoms: [MoleculeGeometry]) throws -> (Double, Double) {
        let (lossE, lossV) = stepper.step(geoms, parameters: &model.parameters, adam: adam, hkMap: options.hkMap)
        if !lossE.isFinite || !lossV.isFinite {
            throw QDFError("training diverged in epoch \(epoch), batch \(nextBatch + 1) (Loss_E \(lossE), Loss_V \(lossV)); the last good checkpoint is kept — try a smaller --lr", file: run.path)
        }
        return (lossE, lossV)
    }

    /// MAE (over molecules × outputs) and the predictions TSV rows. Molecule-parallel:
    /// each worker predicts a contiguous share with its own engine.
    func evaluate(_ store: GeometryStore, molecules: [Molecule]) throws -> (mae: Double, rows: [Prediction]) {
        let count = molecules.count
        let values = try evalEngines.predict(count: count, workers: defaultWorkers, batchSize: 32,
                                             parameters: model.parameters) { r in
            try store.geometries(Array(r))
        }
        var rows = [Prediction]()
        rows.reserveCapacity(count)
        var abs = 0.0, terms = 0
        for (m, v) in zip(molecules, values) {
            for q in 0..<v.count { abs += Swift.abs(Double(v[q]) - m.properties[q]); terms += 1 }
            rows.append(Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties))
        }
        return (abs / Double(max(terms, 1)), rows)
    }

    // MARK: - Checkpoints

    func writeCheckpoint() throws {
        let state = TrainingState(
            datasetDirectory: dataset.directory, epoch: epoch, order: order, nextBatch: nextBatch,
            partialLossE: partialLossE, partialLossV: partialLossV, partialSeconds: partialSeconds,
            elapsedBefore: elapsedBefore, rng: rng.stateArray, adamSteps: adam.steps,
            metadata: options.metadata,
            modelFile: SafetensorsFile(tensors: [], metadata: [:]))
        try run.writeState(state, model: model, adam: adam)
    }

    func restore(_ s: TrainingState) throws {
        epoch = s.epoch
        order = s.order
        nextBatch = s.nextBatch
        partialLossE = s.partialLossE; partialLossV = s.partialLossV; partialSeconds = s.partialSeconds
        elapsedBefore = s.elapsedBefore
        rng = RandomGenerator(state: s.rng)
        guard s.adamSteps.count == adam.steps.count, s.adamM.count == adam.m.count, s.adamV.count == adam.v.count else {
            throw QDFError("the optimizer state does not match the model", file: run.path)
        }
        adam.steps = s.adamSteps
        adam.m = s.adamM
        adam.v = s.adamV
        records = try run.readLearningCurve().filter { $0.epoch < epoch }
        if !order.isEmpty && order.count != dataset.train.count {
            throw QDFError("the checkpoint's epoch order has \(order.count) molecules, the training set \(dataset.train.count) (did train.txt change?)", file: run.path)
        }
    }
}

/// The library's version.
public enum QDFVersion {
    /// The version string, recorded as "qdf-swift <version>" in a trained model's `source`.
    public static let string = "0.1.0"
}
