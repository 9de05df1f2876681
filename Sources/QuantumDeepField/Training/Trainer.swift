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

    // Options beyond the reference recipe (docs/training.md); each off by default.

    /// The learning-rate schedule (`.step`: the reference's StepLR).
    public var schedule: LearningRateSchedule = .step
    /// Epochs of linear warm-up at the start (0: none).
    public var warmupEpochs: Double = 0
    /// The rate the cosine schedule ends at.
    public var lrMin: Double = 0
    /// Training time (seconds, evaluation included) after which the run ends, with its final
    /// evaluation and model; the cosine schedule is then sized to it. nil: run all epochs.
    public var timeBudget: Double? = nil
    /// What the time budget, the cosine schedule sized to it and the learning curve's time
    /// column count: elapsed (wall-clock) seconds, or the process's CPU seconds, which give
    /// arms run side by side on a shared machine equal budgets.
    public var budgetClock: BudgetClock = .wall
    /// Decay of an exponential moving average of the parameters, used for evaluation and
    /// written as the model (nil: none).
    public var ema: Double? = nil
    /// The loss on the properties (`.mse`: the reference's).
    public var energyLoss: EnergyLoss = .mse
    /// Evaluate (val and test MAE, predictions, model) every this many epochs, and after the last.
    public var evalEvery = 1
    /// Fit a per-element reference on the training set and learn the residual.
    public var elementBaseline = false
    /// Clip each pass's gradient to this Euclidean norm (nil: no clipping).
    public var clipNorm: Double? = nil
    /// Weight of Loss_V's gradient (1: the reference).
    public var potentialWeight: Double = 1
    /// The expected share of each molecule's grid points the V step fits, drawn anew every
    /// step (docs/model.md §7, "The sampled V step"); 1: all (the reference).
    public var potentialGridFraction: Double = 1
    /// Density supervision (docs/model.md §16): the folder of DFT density cubes of training
    /// molecules (recorded so that a resumed run reloads them) and the weight w of Loss_ρ
    /// in the V pass. nil / 0: off.
    public var densityTargets: String? = nil
    public var densityWeight: Double = 0
    /// Parts of the model kept fixed (fine-tuning from a trained model, `FineTuning`): no
    /// gradient work, no Adam state; with the orbitals frozen the V step is skipped.
    public var freeze: FrozenParts = []

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
        guard warmupEpochs >= 0, warmupEpochs.isFinite else { throw QDFError("warm-up epochs cannot be negative") }
        guard lrMin >= 0, lrMin < learningRate else { throw QDFError("the final learning rate must be ≥ 0 and below lr") }
        if let b = timeBudget { guard b > 0, b.isFinite else { throw QDFError("the time budget must be positive") } }
        if let d = ema { guard d > 0, d < 1 else { throw QDFError("the EMA decay must lie between 0 and 1 (e.g. 0.999)") } }
        guard evalEvery > 0 else { throw QDFError("--eval-every must be positive") }
        if let c = clipNorm { guard c > 0, c.isFinite else { throw QDFError("the clipping norm must be positive") } }
        guard potentialWeight >= 0, potentialWeight.isFinite else { throw QDFError("the Loss_V weight cannot be negative") }
        guard potentialGridFraction > 0, potentialGridFraction <= 1 else {
            throw QDFError("the HK grid fraction must lie in (0, 1] (e.g. 0.25: a quarter of the grid points per V step)")
        }
        if potentialGridFraction < 1 && !hkMap {
            throw QDFError("--hk-grid-fraction samples the V step's grid points: it needs the HK map (drop --no-hk-map)")
        }
        guard densityWeight >= 0, densityWeight.isFinite else { throw QDFError("the density weight cannot be negative") }
        if densityTargets != nil {
            guard hkMap else { throw QDFError("density supervision acts in the V step: it needs the HK map (drop --no-hk-map)") }
            guard densityWeight > 0 else { throw QDFError("density targets need a positive --density-weight") }
        } else if densityWeight > 0 {
            throw QDFError("--density-weight needs --density-targets DIR")
        }
        if hyper.operation == .dipole {
            guard !elementBaseline else {
                throw QDFError("the dipole readout computes |μ| from the density; an element baseline would be added to it (drop --element-baseline)")
            }
            guard !freeze.contains(.orbitals) else {
                throw QDFError("with the dipole readout only the orbitals reach |μ|: freezing them leaves nothing to train")
            }
        }
    }

    /// As strings for the model and state metadata.
    var metadata: [String: String] {
        ["batch_size": String(batchSize), "lr": "\(learningRate)", "lr_decay": "\(lrDecay)",
         "step_size": String(stepSize), "epochs": String(epochs), "seed": String(seed),
         "hk_map": hkMap ? "true" : "false", "cache_bytes": String(cacheBytes),
         "schedule": schedule.rawValue, "warmup_epochs": "\(warmupEpochs)", "lr_min": "\(lrMin)",
         "time_budget": timeBudget.map { "\($0)" } ?? "none", "budget_clock": budgetClock.rawValue, "ema": ema.map { "\($0)" } ?? "none",
         "loss": energyLoss.description, "eval_every": String(evalEvery),
         "fit_element_baseline": elementBaseline ? "true" : "false",
         "clip_norm": clipNorm.map { "\($0)" } ?? "none", "hk_weight": "\(potentialWeight)",
         "hk_grid_fraction": "\(potentialGridFraction)",
         "density_targets": densityTargets ?? "none", "density_weight": "\(densityWeight)",
         "freeze": freeze.description]
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
        // Options added later: absent in older runs, which used the defaults.
        func optionalNumber(_ k: String) throws -> Double? {
            guard let s = md[k], s != "none" else { return nil }
            guard let v = Double(s) else { throw QDFError("training state: option '\(k)' is malformed: '\(s)'") }
            return v
        }
        if let s = md["schedule"] {
            guard let v = LearningRateSchedule(rawValue: s) else { throw QDFError("training state: unknown schedule '\(s)'") }
            schedule = v
        }
        warmupEpochs = try optionalNumber("warmup_epochs") ?? 0
        lrMin = try optionalNumber("lr_min") ?? 0
        timeBudget = try optionalNumber("time_budget")
        if let s = md["budget_clock"] {
            guard let v = BudgetClock(rawValue: s) else { throw QDFError("training state: unknown budget clock '\(s)'") }
            budgetClock = v
        }
        ema = try optionalNumber("ema")
        if let s = md["loss"] {
            guard let v = EnergyLoss(s) else { throw QDFError("training state: unknown loss '\(s)'") }
            energyLoss = v
        }
        evalEvery = Int(try optionalNumber("eval_every") ?? 1)
        elementBaseline = md["fit_element_baseline"] == "true"
        clipNorm = try optionalNumber("clip_norm")
        potentialWeight = try optionalNumber("hk_weight") ?? 1
        potentialGridFraction = try optionalNumber("hk_grid_fraction") ?? 1
        densityTargets = md["density_targets"].flatMap { $0 == "none" ? nil : $0 }
        densityWeight = try optionalNumber("density_weight") ?? 0
        freeze = try FrozenParts(parsing: md["freeze"] ?? "none")
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

/// Trains a model on a data set, epoch by epoch (docs/model.md §8): in memory, or into a
/// run folder that it writes after every epoch and can resume from. Mutable state: use
/// from one thread at a time.
public final class Trainer {
    /// The data set trained on.
    public let dataset: Dataset
    /// The options (with `hyper.outputs` set to the data set's P).
    public let options: TrainingOptions
    /// The run folder the trainer writes; nil for a trainer in memory, which writes no file.
    package let run: RunDirectory?
    /// The model being trained: the trainer owns it and updates its parameters in place.
    public private(set) var model: QDFModel
    /// The optimizer (its moments and step counts are checkpointed).
    package let adam: Adam
    let stepper: TrainingStep
    let evalEngines: WorkerPool<Engine>
    /// The moving average of the parameters, when `options.ema` is set.
    public private(set) var average: ParameterAverage?
    var rng: RandomGenerator
    /// The learning curve so far.
    public private(set) var records: [EpochRecord] = []
    /// Position inside the current epoch (for checkpoints taken mid-epoch).
    var epoch = 0
    var order: [Int] = []
    var nextBatch = 0
    /// Where the next batch starts: the epoch (0-based, as in `TrainingOutcome.interrupted`
    /// and the learning curve) and the batches of it already done.
    public var position: (epoch: Int, batch: Int) { (epoch, nextBatch) }
    var partialLossE = 0.0, partialLossV = 0.0, partialSeconds = 0.0
    /// Seconds of all completed epochs (the learning curve's time column is cumulative).
    var elapsedBefore = 0.0
    /// The CPU kinds (vendor, model name, family, model: `GEMMChoice.cpuKey`) this run has
    /// trained on, in order, kept in its checkpoint: a CPU-second buys different work on
    /// different kinds, so a run resumed on another kind is not the run an equal budget on
    /// one kind would give.
    public private(set) var cpuKinds: [String]
    /// Set by `resume` when the run continues on a CPU kind it has not trained on before:
    /// what that means for its budget (the caller shows it).
    public private(set) var resumeWarning: String?

    var trainGeometry: GeometryStore
    var valGeometry: GeometryStore
    var testGeometry: GeometryStore

    /// A new run in memory: a freshly initialized model (seed) with its dictionary from the
    /// data set, trained by `train()` without writing any file (`run` is nil; the learning
    /// curve is `records`, the result `evaluationModel`). The data set's `directory` is not
    /// read. Throws `QDFError` for invalid options.
    ///
    /// `workers` engines run molecule-parallel (also in evaluation). With a `group`
    /// (data parallelism over processes, docs/distributed.md) every rank constructs its
    /// trainer with the same arguments and its own `workers` (its entry of
    /// `group.workersPerRank`).
    ///
    /// `densityTargets` (training molecule id → q on its field grid, `DensityTargets` in
    /// QDFDensity) is required when `options.densityTargets` is set.
    ///
    /// `start`: a model to start from instead of a fresh one (fine-tuning, `FineTuning.start`);
    /// its architecture replaces `options.hyper`, and it must have the data set's outputs
    /// and cover its orbital types. `options.freeze` needs a `start`.
    public convenience init(dataset: Dataset, options: TrainingOptions,
                            workers: Int = defaultWorkers, group: (any ProcessGroup)? = nil,
                            densityTargets: [String: [Float]] = [:], start: QDFModel? = nil) throws {
        try self.init(dataset: dataset, options: options, runDirectory: nil, workers: workers, group: group,
                      densityTargets: densityTargets, start: start)
    }

    /// A new run into `runDirectory` (created if needed): the trainer in memory of
    /// `init(dataset:options:workers:group:densityTargets:start:)` that also writes a first
    /// checkpoint there, and the model, learning curve, test predictions and a checkpoint
    /// after every evaluated epoch. Throws `QDFError` for invalid options, a folder that
    /// already holds a run or cannot be written, or an I/O failure. With a `group`, only
    /// rank 0 touches the run folder.
    public convenience init(dataset: Dataset, options: TrainingOptions, runDirectory: String,
                            workers: Int = defaultWorkers, group: (any ProcessGroup)? = nil,
                            densityTargets: [String: [Float]] = [:], start: QDFModel? = nil) throws {
        try self.init(dataset: dataset, options: options, runDirectory: Optional(runDirectory), workers: workers,
                      group: group, densityTargets: densityTargets, start: start)
        // A checkpoint before the first batch: a run killed at any moment can be resumed.
        try writeCheckpoint()
    }

    /// A freshly initialized model for `dataset` (or `start`), and the run folder when one is
    /// given (created on rank 0 before the geometry is computed, so that a bad folder fails fast).
    private convenience init(dataset: Dataset, options: TrainingOptions, runDirectory: String?,
                             workers: Int, group: (any ProcessGroup)?, densityTargets: [String: [Float]],
                             start: QDFModel?) throws {
        var opts = options
        let model: QDFModel
        if let start {
            guard start.hyper.outputs == dataset.outputs else {
                throw QDFError("the starting model has \(start.hyper.outputs) outputs, the data set \(dataset.outputs)")
            }
            opts.hyper = start.hyper
            try opts.validate()
            model = start
        } else {
            try options.validate()
            guard options.freeze.isEmpty else {
                throw QDFError("freezing parts of a model needs a trained model to start from (--init-from)")
            }
            var hyper = options.hyper
            hyper.outputs = dataset.outputs
            opts.hyper = hyper
            let dict = dataset.orbitalDictionary(basis: hyper.basisSet)
            var metadata = [String: String]()
            if options.elementBaseline {
                metadata["element_baseline"] = try ElementBaseline.fit(dataset.train, outputs: dataset.outputs).json
            }
            model = try QDFModel(hyper: hyper, dictionary: dict, metadata: metadata, seed: options.seed)
        }
        var run = runDirectory.map { RunDirectory(unchecked: $0) }
        if let path = runDirectory {
            try Trainer.onRoot(group, "create the run folder") { run = try RunDirectory(creating: path) }
        }
        try self.init(dataset: dataset, options: opts, model: model, run: run, workers: workers, group: group,
                      densityTargets: densityTargets)
    }

    /// Runs `body` (a file operation) directly, or on rank 0 of `group` with its outcome shared.
    static func onRoot(_ group: (any ProcessGroup)?, _ what: String, _ body: () throws -> Void) throws {
        if let g = group { try g.onRoot(what, body) } else { try body() }
    }

    /// The processes this trainer is one rank of, or nil (one process).
    public var group: (any ProcessGroup)? { stepper.group }
    /// Seconds this trainer spent combining gradients across ranks (0 in one process).
    public var communicationSeconds: Double { stepper.communicationSeconds }

    init(dataset: Dataset, options: TrainingOptions, model: QDFModel, run: RunDirectory?,
         workers: Int = defaultWorkers, group: (any ProcessGroup)? = nil, densityTargets: [String: [Float]] = [:]) throws {
        self.dataset = dataset
        self.options = options
        self.run = run
        cpuKinds = [GEMMChoice.cpuKey()]
        var model = model
        if let g = group, g.size > 1, options.budgetClock == .cpu, options.timeBudget != nil {
            // Each rank would count its own CPU time and the ranks could stop at different batches.
            throw QDFError("a CPU-time budget counts one process; across \(g.size) ranks give the budget in wall-clock time")
        }
        model.metadata["dataset"] = dataset.name
        for (k, v) in dataset.modelMetadata { model.metadata[k] = v }  // property, unit, property_kind
        model.metadata["train_atoms"] = dataset.trainAtomRange
        model.metadata["source"] = "qdf-swift \(QDFVersion.string)"
        for (k, v) in options.metadata { model.metadata[k] = v }
        self.model = model
        adam = Adam(layout: model.layout, learningRate: Float(options.learningRate), frozen: options.freeze)
        stepper = TrainingStep(architecture: model.architecture, workers: workers, group: group, frozen: options.freeze)
        stepper.energyLoss = options.energyLoss
        stepper.clipNorm = options.clipNorm
        stepper.potentialWeight = options.potentialWeight
        stepper.potentialGridFraction = options.potentialGridFraction
        stepper.potentialSampleSeed = options.seed
        stepper.densityWeight = options.densityWeight
        let trainable = model.layout.entries.filter { !options.freeze.freezes(tensor: $0.name) }.map(\.range)
        average = options.ema.map { ParameterAverage(decay: $0, initial: model.parameters, ranges: trainable) }
        let architecture = model.architecture
        evalEngines = WorkerPool(count: stepper.workers) { Engine(architecture: architecture) }
        rng = RandomGenerator(seed: options.seed &+ 1)
        let budget = options.cacheBytes
        if options.densityTargets != nil && densityTargets.isEmpty {
            throw QDFError("no density target matches a training molecule", file: options.densityTargets)
        }
        trainGeometry = try GeometryStore(architecture: architecture, molecules: dataset.train, withPotential: options.hkMap,
                                          budget: budget, densityTargets: options.densityTargets == nil ? [:] : densityTargets)
        valGeometry = try GeometryStore(architecture: architecture, molecules: dataset.val, withPotential: false,
                                        budget: max(0, budget - trainGeometry.cachedBytes))
        testGeometry = try GeometryStore(architecture: architecture, molecules: dataset.test, withPotential: false,
                                         budget: max(0, budget - trainGeometry.cachedBytes - valGeometry.cachedBytes))
    }

    /// Resumes the run in `runDirectory` from its last checkpoint, reloading the data set
    /// from the folder recorded in it. Throws `QDFError` (with the file) if there is no
    /// state, it is malformed or no longer matches the model or the training set.
    /// With a `group`, rank 0 reads the checkpoint and sends it to the others; the number
    /// of ranks and workers may differ from the run's start.
    ///
    /// A run trained with density targets needs `densityTargets`, which is given the run's
    /// options (its `densityTargets` folder) and training set and returns the targets.
    ///
    /// `cpuKind` is the CPU this process runs on (nil: read from /proc/cpuinfo); a kind
    /// the run has not trained on is appended to `cpuKinds` and sets `resumeWarning`.
    public static func resume(runDirectory: String, workers: Int = defaultWorkers,
                              group: (any ProcessGroup)? = nil, cpuKind: String? = nil,
                              densityTargets: ((TrainingOptions, ModelArchitecture, [Molecule]) throws -> [String: [Float]])? = nil) throws -> Trainer {
        var run = RunDirectory(unchecked: runDirectory)
        var stateBytes = Data(), curve = ""
        try onRoot(group, "read the checkpoint") {
            run = try RunDirectory(existing: runDirectory)
            stateBytes = try Data(contentsOf: URL(fileURLWithPath: run.statePath))
            curve = (try? String(contentsOfFile: run.learningCurvePath, encoding: .utf8)) ?? ""
        }
        if let g = group {
            stateBytes = g.broadcast(stateBytes)
            curve = String(decoding: g.broadcast(Data(curve.utf8)), as: UTF8.self)
        }
        let state = try run.parseState(try SafetensorsFile.parse(stateBytes, path: run.statePath))
        let dataset = try Dataset.load(directory: state.datasetDirectory)
        let model = try QDFModel(file: state.modelFile)
        let options = try TrainingOptions(metadata: state.metadata, hyper: model.hyper)
        var targets = [String: [Float]]()
        if options.densityTargets != nil {
            guard let load = densityTargets else {
                throw QDFError("this run was trained with density targets (\(options.densityTargets!)); resume it with qdf train --resume", file: run.path)
            }
            targets = try load(options, model.architecture, dataset.train)
        }
        let t = try Trainer(dataset: dataset, options: options, model: model, run: Optional(run), workers: workers, group: group,
                            densityTargets: targets)
        try t.restore(state, learningCurve: curve, cpuKind: cpuKind ?? GEMMChoice.cpuKey())
        return t
    }

    /// The learning rate at the start of an epoch (counted from 0), by the run's schedule.
    public func learningRate(epoch: Int) -> Float {
        Float(options.learningRate(at: TrainingPosition(epochs: Double(epoch), seconds: elapsedBefore),
                                   batchesPerEpoch: batchesPerEpoch))
    }

    var batchesPerEpoch: Int { (dataset.train.count + options.batchSize - 1) / options.batchSize }

    /// Training time so far (seconds, evaluation included).
    public var elapsedSeconds: Double { elapsedBefore + partialSeconds }

    /// The model as evaluated and written: the moving average's parameters when enabled.
    public var evaluationModel: QDFModel {
        guard let a = average else { return model }
        var m = model
        m.parameters = a.values
        return m
    }

    /// Seconds on the clock of `options.budgetClock` (wall: elapsed; cpu: this process's CPU
    /// time, all threads), from an arbitrary origin.
    private func clock() -> Double {
        switch options.budgetClock {
        case .wall: return Date().timeIntervalSinceReferenceDate
        case .cpu: return processCPUSeconds()
        }
    }

    /// What a divergence leaves: the run folder's last checkpoint, or (in memory) nothing usable.
    private var keptAfterDivergence: String {
        run == nil ? "the trainer's parameters are no longer usable (it writes no checkpoint in memory)"
                   : "the last good checkpoint in the run folder is kept (\(epoch == 0 ? "the initial one" : "epoch \(epoch - 1)"))"
    }

    private var budgetReached: Bool { options.timeBudget.map { elapsedSeconds >= $0 } ?? false }

    /// Runs epochs until `options.epochs`, or until `shouldStop` answers true after a batch
    /// (then a checkpoint is written). Each epoch writes the learning curve, test predictions,
    /// model and state atomically. Throws `QDFError` (file: the run folder) when a loss or
    /// the validation MAE is not finite, keeping the last good checkpoint of a run folder; I/O errors pass through.
    public func train(shouldStop: () -> Bool = { false }, report: (TrainingEvent) -> Void = { _ in }) throws -> TrainingOutcome {
        let n = dataset.train.count
        let B = options.batchSize
        let batches = batchesPerEpoch
        if budgetReached { return .finished }
        while epoch < options.epochs {
            if order.isEmpty {
                order = Array(0..<n)
                for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextIndex(i + 1)) }
                nextBatch = 0; partialLossE = 0; partialLossV = 0; partialSeconds = 0
            }
            var batchStart = clock()
            var outOfTime = false
            while nextBatch < batches {
                let position = TrainingPosition(epochs: Double(epoch) + Double(nextBatch) / Double(batches), seconds: elapsedSeconds)
                adam.learningRate = Float(options.learningRate(at: position, batchesPerEpoch: batches))
                let idx = Array(order[(nextBatch * B)..<min(n, (nextBatch + 1) * B)])
                let (le, lv) = try step(indices: idx)
                partialLossE += le
                partialLossV += lv
                nextBatch += 1
                let now = clock()
                partialSeconds += now - batchStart
                batchStart = now
                report(.batch(epoch: epoch, batch: nextBatch, batches: batches, epochSeconds: partialSeconds))
                if budgetReached { outOfTime = true; break }
                if shouldStop() && nextBatch < batches {
                    try writeCheckpoint()
                    return .interrupted(epoch: epoch, batch: nextBatch)
                }
            }
            let lastEpoch = epoch + 1 == options.epochs || outOfTime
            guard partialLossE.isFinite, partialLossV.isFinite else {
                throw QDFError("training diverged in epoch \(epoch) (Loss_E \(partialLossE), Loss_V \(partialLossV)); \(keptAfterDivergence) — try a smaller learning rate (--lr)", file: run?.path)
            }
            var evaluated: (record: EpochRecord, rows: [Prediction])? = nil
            if lastEpoch || (epoch + 1) % options.evalEvery == 0 {
                report(.evaluating(epoch: epoch))
                let evalStart = clock()
                let maeVal = try evaluate(valGeometry, molecules: dataset.val).mae
                let test = try evaluate(testGeometry, molecules: dataset.test)
                partialSeconds += clock() - evalStart
                guard maeVal.isFinite else {
                    throw QDFError("training diverged in epoch \(epoch) (validation MAE \(maeVal)); \(keptAfterDivergence) — try a smaller learning rate (--lr)", file: run?.path)
                }
                evaluated = (EpochRecord(epoch: epoch, seconds: elapsedBefore + partialSeconds, lossE: partialLossE,
                                         lossV: partialLossV, maeVal: maeVal, maeTest: test.mae), test.rows)
            }
            elapsedBefore += partialSeconds
            partialSeconds = 0
            epoch += 1
            order = []; nextBatch = 0
            if let e = evaluated {
                records.append(e.record)
                let written = evaluationModel
                if let run {
                    try Trainer.onRoot(group, "write the epoch's files") {
                        try run.writeEpoch(records: records, unit: dataset.unit, predictions: e.rows, model: written)
                    }
                }
            }
            try writeCheckpoint()
            if let e = evaluated { report(.epoch(e.record)) }
            if outOfTime { return .finished }
            if shouldStop() && epoch < options.epochs { return .interrupted(epoch: epoch, batch: 0) }
        }
        return .finished
    }

    /// One mini-batch of training molecules (all of it, or this rank's part of it in a group).
    func step(indices idx: [Int]) throws -> (Double, Double) {
        guard let g = group else { return try step(try trainGeometry.geometries(idx)) }
        let mine = stepper.layout(batchCount: idx.count).molecules(ofRank: g.rank)
        let local = try trainGeometry.geometries(Array(idx[mine]))
        let points = trainGeometry.architecture.sphere.count
        let fieldCounts = idx.map { points * dataset.train[$0].atomCount }
        let (lossE, lossV) = stepper.step(local: local, fieldCounts: fieldCounts, parameters: &model.parameters,
                                          adam: adam, hkMap: options.hkMap)
        return try checked(lossE, lossV)
    }

    /// One mini-batch: the E step, then the V step. Returns (Loss_E, Loss_V).
    func step(_ geoms: [MoleculeGeometry]) throws -> (Double, Double) {
        let (lossE, lossV) = stepper.step(geoms, parameters: &model.parameters, adam: adam, hkMap: options.hkMap)
        return try checked(lossE, lossV)
    }

    private func checked(_ lossE: Double, _ lossV: Double) throws -> (Double, Double) {
        average?.update(with: model.parameters)
        if !lossE.isFinite || !lossV.isFinite {
            throw QDFError("training diverged in epoch \(epoch), batch \(nextBatch + 1) (Loss_E \(lossE), Loss_V \(lossV)); \(keptAfterDivergence) — try a smaller learning rate (--lr)", file: run?.path)
        }
        return (lossE, lossV)
    }

    /// MAE (over molecules × outputs) and the predictions TSV rows. Molecule-parallel:
    /// each worker predicts a contiguous share with its own engine (the training step's
    /// share layout). In a group each rank predicts its shares, rank 0 gathers the values
    /// and computes the MAE, which every rank receives; the rows are rank 0's only.
    func evaluate(_ store: GeometryStore, molecules: [Molecule]) throws -> (mae: Double, rows: [Prediction]) {
        let layout = stepper.layout(batchCount: molecules.count)
        let local = try evalEngines.predict(layout: layout, rank: group?.rank ?? 0, batchSize: Predictor.defaultBatchSize,
                                            parameters: average?.values ?? model.parameters) { r in try store.geometries(Array(r)) }
        let values = group.map { gatherValues(group: $0, local: local, countsPerRank: layout.moleculesPerRank,
                                              outputs: model.hyper.outputs) } ?? local
        var rows = [Prediction]()
        var errors = ErrorSums(outputs: model.hyper.outputs)
        if (group?.rank ?? 0) == 0 {
            rows.reserveCapacity(molecules.count)
            for (m, v) in zip(molecules, values) {
                rows.append(Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties))
                errors.add(predicted: v, correct: m.properties)
            }
        }
        var mae = [errors.overallMAE]
        if let g = group { mae.withUnsafeMutableBytes { g.broadcast($0, root: 0) } }
        return (mae[0], rows)
    }

    // MARK: - Checkpoints

    /// Writes the resumable state into the run folder (nothing in memory).
    func writeCheckpoint() throws {
        guard let run else { return }
        let state = TrainingState(
            datasetDirectory: dataset.directory, epoch: epoch, order: order, nextBatch: nextBatch,
            partialLossE: partialLossE, partialLossV: partialLossV, partialSeconds: partialSeconds,
            elapsedBefore: elapsedBefore, rng: rng.stateArray, adamSteps: adam.steps,
            metadata: options.metadata,
            modelFile: SafetensorsFile(tensors: [], metadata: [:]), average: average?.values ?? [], cpuKinds: cpuKinds)
        try Trainer.onRoot(group, "write the checkpoint") { try run.writeState(state, model: model, adam: adam) }
    }

    func restore(_ s: TrainingState, learningCurve: String, cpuKind: String) throws {
        cpuKinds = s.cpuKinds
        if !cpuKinds.contains(cpuKind) {
            if !cpuKinds.isEmpty { resumeWarning = Self.otherCPUWarning(trainedOn: cpuKinds, now: cpuKind, options: options) }
            cpuKinds.append(cpuKind)
        }
        epoch = s.epoch
        order = s.order
        nextBatch = s.nextBatch
        partialLossE = s.partialLossE; partialLossV = s.partialLossV; partialSeconds = s.partialSeconds
        elapsedBefore = s.elapsedBefore
        rng = RandomGenerator(state: s.rng)
        guard s.adamSteps.count == adam.steps.count, s.adamM.count == adam.m.count, s.adamV.count == adam.v.count else {
            throw QDFError("the optimizer state does not match the model", file: run?.path)
        }
        adam.steps = s.adamSteps
        adam.m = s.adamM
        adam.v = s.adamV
        if let d = options.ema {
            guard s.average.count == model.parameters.count else {
                throw QDFError("the checkpoint lacks the parameters' moving average (ema)", file: run?.path)
            }
            average = ParameterAverage(decay: d, values: s.average, ranges: average?.ranges)
        }
        records = try run!.parseLearningCurve(learningCurve).filter { $0.epoch < epoch }  // restored trainers have a run folder
        if !order.isEmpty && order.count != dataset.train.count {
            throw QDFError("the checkpoint's epoch order has \(order.count) molecules, the training set \(dataset.train.count) (did train.txt change?)", file: run?.path)
        }
    }
}

extension Trainer {
    /// The warning for a run that resumes on a CPU kind it has not trained on.
    package static func otherCPUWarning(trainedOn: [String], now: String, options: TrainingOptions) -> String {
        let before = trainedOn.map { "'\($0)'" }.joined(separator: ", then ")
        var text = "this run trained on \(before) and now resumes on '\(now)'"
        if let budget = options.timeBudget {
            let clock = options.budgetClock == .cpu ? "CPU" : "wall-clock"
            text += String(format: ": its time budget (%.0f s of %@ time) counts seconds of different CPU kinds, and a second buys different work on each, so the epochs it reaches are not those of one kind; compare it only with runs that moved the same way", budget, clock)
        } else {
            text += ": the time column of its learning curve mixes seconds of different CPU kinds"
        }
        return text
    }
}

/// The library's version.
public enum QDFVersion {
    /// The version string, recorded as "qdf-swift <version>" in a trained model's `source`.
    public static let string = "0.1.0"
}
