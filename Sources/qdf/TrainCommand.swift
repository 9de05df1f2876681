import ArgumentParser
import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports
import QDFDistributed

/// Set by SIGINT/SIGTERM: finish the current batch, checkpoint, exit.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0
/// Written to standard error by the signal handler itself (rank 0 of an MPI job, whose
/// launcher may kill it a moment after the signal): the resume command, at once.
nonisolated(unsafe) private var stopNotice: UnsafeMutableBufferPointer<UInt8>? = nil

private func installStopHandlers(notice: String? = nil) {
    if let n = notice {
        let bytes = Array(n.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        stopNotice = buffer
    }
    // A launcher may start qdf with these signals blocked (a blocked mask is inherited):
    // unblock them, so that a stop request is seen.
    var unblock = sigset_t()
    sigemptyset(&unblock)
    sigaddset(&unblock, SIGINT)
    sigaddset(&unblock, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { s in
            stopSignal = 1
            if let b = stopNotice { _ = write(2, b.baseAddress, b.count) }
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
        finishes the current batch, writes a checkpoint and prints the command that resumes it. \
        Under mpirun/srun with several processes, every rank computes its share of each batch \
        and rank 0 alone writes the run folder (docs/distributed.md).
        """)

    @Argument(help: "Dataset folder with train.txt, val.txt and test.txt (QDF text format).")
    var dataset: String?

    @Option(name: .shortAndLong, help: "Run folder for the model, learning curve, predictions and state.")
    var output: String?

    @Option(help: "Resume the run in this folder from its last checkpoint.")
    var resume: String?

    @Option(help: "Basis set (sets the number of functions per atom).") var basisSet = Hyperparameters.Reference.basisSet
    @Option(help: "Radius of each atom's grid sphere (Å).") var radius = Hyperparameters.Reference.radius
    @Option(help: "Grid interval (Å).") var gridInterval = Hyperparameters.Reference.gridInterval
    @Option(help: "Number of molecular orbitals (width of the energy functional).") var dim = Hyperparameters.Reference.dim
    @Option(help: "Layers of the energy functional.") var layerFunctional = Hyperparameters.Reference.layerFunctional
    @Option(name: .customLong("hidden-hk"), help: "Width of the Hohenberg–Kohn map.") var hiddenHK = Hyperparameters.Reference.hiddenHK
    @Option(name: .customLong("layer-hk"), help: "Layers of the Hohenberg–Kohn map.") var layerHK = Hyperparameters.Reference.layerHK
    @Option(name: [.customLong("operation"), .customLong("readout")],
            help: "Readout: sum (extensive, e.g. energies), mean (intensive, e.g. HOMO/LUMO), or dipole (no learned readout: |μ| in debye computed from the model's density, nuclei and frozen cores; a data set of μ in D; docs/model.md §20). Default: from the data set's dataset.json (extensive → sum, intensive → mean), else sum.") var operation: String?
    @Option(help: "Frame the molecules are placed in, in training and in every later use of the model (recorded in it): input (as given, the reference) or canonical (centre of nuclear charge, principal axes, signs by the third moment: the same prediction in any orientation; docs/model.md §17). (default: input; fast: canonical)")
    var frame: FrameKind?
    @Option(help: "Orbital environment (docs/model.md §18): this many interaction layers over interatomic distances make each atom's LCAO coefficients depend on its neighbourhood (rotation-invariant); 0: off, the reference.")
    var environmentLayers = 0
    @Option(help: "Orbital environment: width of the atom features and filters.") var environmentFeatures = 64
    @Option(help: "Orbital environment: Gaussians of the radial basis over 0 … cutoff.") var environmentGaussians = 32
    @Option(help: "Orbital environment: cutoff radius (Å); farther atoms do not interact.") var environmentCutoff = 5.0
    @Option(help: "Potential input (docs/model.md §19): give the energy functional's first layer the external potential at each grid point, expanded in this many Gaussians; 0: off, the reference.")
    var potentialFeatures = 0
    @Option(help: "Molecules per mini-batch.") var batchSize = TrainingOptions.reference.batchSize
    @Option(help: "Starting point for the options below: reference (the published recipe: StepLR from lr 1e-4, every epoch evaluated) or fast (bundled model v2's: lr 3e-4, 1 warm-up epoch, cosine to 1e-5 over a 2.5 h time budget, element baseline, EMA 0.9995, evaluation every 5 epochs; docs/training.md). Options given explicitly override it.")
    var recipe: TrainingRecipe = .reference
    @Option(help: "Learning rate. (default: 1e-4; fast: 3e-4)") var lr: Double?
    @Option(help: "Factor applied to the learning rate every --step-size epochs.") var lrDecay = TrainingOptions.reference.lrDecay
    @Option(help: "Epochs between learning-rate decays.") var stepSize = TrainingOptions.reference.stepSize
    @Option(help: "Epochs.") var epochs = TrainingOptions.reference.epochs
    @Option(help: "Random seed (initialization and shuffling).") var seed = TrainingOptions.reference.seed
    @Flag(name: .customLong("no-hk-map"), help: "Train on E alone (the conventional baseline, no HK map).") var noHKMap = false
    @Option(help: "Memory for precomputed geometry, in GiB (per process).") var cacheGib = 8.0
    @Option(help: "Molecule-parallel workers (engines) of this process. Default: one per core (under mpirun/srun: per core the rank is bound to), at most 8.") var workers: Int?
    @Option(help: "Learning-rate schedule: step (the reference's StepLR: --lr-decay every --step-size epochs) or cosine (warm-up, then cosine decay to --lr-min by the last epoch or the --time-budget). (default: step; fast: cosine)")
    var schedule: String?
    @Option(help: "Epochs of linear learning-rate warm-up (fractions allowed). (default: 0; fast: 1)") var warmupEpochs: Double?
    @Option(help: "Learning rate the cosine schedule ends at. (default: 0; fast: 1e-5)") var lrMin: Double?
    @Option(help: "Stop after this much training time, evaluation included (e.g. 90m, 2.5h, 3600s; none: no limit), with the final evaluation and model written; the cosine schedule is sized to it. (default: none; fast: 2.5h)")
    var timeBudget: String?
    @Option(help: "What --time-budget and the learning curve's time column count: wall (elapsed seconds) or cpu (this process's CPU seconds, all threads: equal budgets for runs that share a machine; not across MPI ranks).")
    var budgetClock: BudgetClock = .wall
    @Option(help: "Keep an exponential moving average of the parameters with this decay (e.g. 0.999); it is evaluated and written as the model; 0: none. (default: none; fast: 0.9995)")
    var ema: Double?
    @Option(help: "Loss on the property: mse (the reference), l1, huber or huber:DELTA (δ in the property's unit).")
    var loss = "mse"
    @Option(help: "Evaluate val and test (and write the model and predictions) every this many epochs, and after the last. (default: 1; fast: 5)")
    var evalEvery: Int?
    @Flag(inversion: .prefixedNo, help: "Fit per-element reference values on the training set (least squares) and learn the residual; they are stored in the model and added to its predictions. (default: off; fast: on)")
    var elementBaseline: Bool?
    @Option(help: "Clip each pass's gradient to this Euclidean norm.") var clipNorm: Double?
    @Option(name: .customLong("hk-weight"), help: "Weight of the Hohenberg–Kohn loss (Loss_V) in the V step.") var hkWeight = TrainingOptions.reference.potentialWeight
    @Option(name: .customLong("hk-grid-fraction"), help: "Fit the V step on this expected share of each molecule's grid points, drawn anew every step (1: all, the reference; 0.25 makes the HK map's work a quarter).") var hkGridFraction = TrainingOptions.reference.potentialGridFraction
    @Option(help: "Density supervision: a folder of DFT density cubes of training molecules (ID.cube, .cube.gz or .cube.bz2, e/bohr³); the V step also fits the model's density to their valence density (docs/training.md).")
    var densityTargets: String?
    @Option(help: "Weight of the density term (Loss_ρ) in the V step. (default: 1 with --density-targets)")
    var densityWeight: Double?
    @Option(help: "Fine-tune: start from this trained model (a model file, or 'bundled' for the bundled model) instead of random weights. Its architecture, orbitals, energy functional and HK map are carried over; the property head is new (for the data set's properties), and orbital types it lacks are added (docs/training.md, \"Fine-tuning\"). Architecture options cannot be given with it.")
    var initFrom: String?
    @Option(help: "With --init-from: parts to keep fixed, comma-separated: orbitals (coefficients, exponents, orbital environment; the HK map and the V step go with them), functional (the energy functional's layers but the head). Frozen parts take no gradient work and no optimizer state.")
    var freeze: String?
    @Option(help: "With --init-from: how the new property head starts: lsq (fitted by least squares to the training molecules over the model's features, as qdf probe does) or random (as a new model's).")
    var initHead: FineTuning.Head = .leastSquares
    @OptionGroup var chemistry: ChemistryOptions

    /// Architecture options given with a value other than their default (refused with --init-from).
    var architectureFlagsGiven: [String] {
        let r = Hyperparameters.Reference.self
        var given = [String]()
        if basisSet != r.basisSet { given.append("--basis-set") }
        if radius != r.radius { given.append("--radius") }
        if gridInterval != r.gridInterval { given.append("--grid-interval") }
        if dim != r.dim { given.append("--dim") }
        if layerFunctional != r.layerFunctional { given.append("--layer-functional") }
        if hiddenHK != r.hiddenHK { given.append("--hidden-hk") }
        if layerHK != r.layerHK { given.append("--layer-hk") }
        if frame != nil { given.append("--frame") }
        if environmentLayers != 0 { given.append("--environment-layers") }
        if potentialFeatures != 0 { given.append("--potential-features") }
        return given
    }

    func validate() throws {
        if resume == nil {
            guard dataset != nil else { throw ValidationError("give a dataset folder, or --resume RUN_DIR") }
            guard output != nil else { throw ValidationError("give --output RUN_DIR") }
            if let op = operation, Readout(rawValue: op) == nil { throw ValidationError("--operation must be \(Readout.names)") }
            if let s = schedule, LearningRateSchedule(rawValue: s) == nil { throw ValidationError("--schedule must be step or cosine") }
            guard EnergyLoss(loss) != nil else { throw ValidationError("--loss must be mse, l1, huber or huber:DELTA with DELTA > 0") }
            if let b = timeBudget, b != "none" { _ = try parseDuration(b) }
            if densityWeight != nil && densityTargets == nil { throw ValidationError("--density-weight needs --density-targets DIR") }
            if let w = densityWeight, !(w > 0) || !w.isFinite { throw ValidationError("--density-weight must be positive") }
            if densityTargets != nil && (frame ?? recipe.options.hyper.frame) == .canonical {
                throw ValidationError("--density-targets are sampled on the input frame's grid; give --frame input with them")
            }
            if initFrom != nil, !architectureFlagsGiven.isEmpty {
                throw ValidationError("--init-from takes the architecture from the model it starts from; drop \(architectureFlagsGiven.joined(separator: ", "))")
            }
            if let f = freeze {
                guard initFrom != nil else { throw ValidationError("--freeze needs --init-from MODEL (a trained model to keep parts of)") }
                do { _ = try FrozenParts(parsing: f) } catch let e as QDFError { throw ValidationError("--freeze: " + e.message) }
            }
        } else if dataset != nil || output != nil || initFrom != nil || freeze != nil {
            throw ValidationError("--resume takes everything from the run folder; give no dataset, --output, --init-from or --freeze")
        }
        if environmentLayers < 0 { throw ValidationError("--environment-layers cannot be negative") }
        if environmentLayers > 0 {
            do { try EnvironmentShape(layers: environmentLayers, features: environmentFeatures, gaussians: environmentGaussians,
                                      cutoff: environmentCutoff).validate() }
            catch let e as QDFError { throw ValidationError(e.message) }
        }
        if potentialFeatures == 1 || potentialFeatures < 0 { throw ValidationError("--potential-features must be 0 (off) or at least 2") }
        if let w = workers, w < 1 { throw ValidationError("--workers must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let group = try joinMPIIfLaunched(workers: workers)
            let isRoot = (group?.rank ?? 0) == 0
            let w = group.map { $0.workersPerRank[$0.rank] } ?? workers ?? defaultWorkers
            let trainer = try resume.map { try resumedTrainer($0, workers: w, group: group, isRoot: isRoot) }
                ?? newTrainer(workers: w, group: group, isRoot: isRoot)
            let runPath = trainer.run!.path  // a trainer of the command line has a run folder
            let resumeCommand = "\(launchPrefix(group))qdf train --resume \(runPath)"
            installSignals(group: group, isRoot: isRoot, runPath: runPath, resumeCommand: resumeCommand)
            let outcome = try trainShowingProgress(trainer, group: group, isRoot: isRoot)
            switch outcome {
            case .finished:
                if isRoot { log("done: \(runPath)/model.safetensors") }
                group?.finish()
            case let .interrupted(epoch, batch):
                if isRoot { log("stopped in epoch \(epoch) after batch \(batch); checkpoint written. Resume with:\n  \(resumeCommand)") }
                group?.finish()
                throw ExitCode(130)
            }
        }
    }

    /// The trainer of the run in `runDirectory`, from its last checkpoint.
    private func resumedTrainer(_ runDirectory: String, workers: Int, group: MPIProcessGroup?, isRoot: Bool) throws -> Trainer {
        let trainer = try Trainer.resume(runDirectory: runDirectory, workers: workers, group: group) { options, architecture, train in
            try loadDensityTargets(options.densityTargets!, train: train, sphere: architecture.sphere, log: isRoot)
        }
        if isRoot, let w = trainer.resumeWarning { log("warning: " + w) }
        if isRoot { log("resuming \(runDirectory) in epoch \(trainer.position.epoch) after batch \(trainer.position.batch) of \(trainer.options.epochs) epochs") }
        return trainer
    }

    /// A new run: the data set checked and loaded, the options from the recipe and the
    /// flags, the density targets, and the trainer with its run folder.
    private func newTrainer(workers: Int, group: MPIProcessGroup?, isRoot: Bool) throws -> Trainer {
        let start = Date()
        try checkChemistry(log: isRoot)
        let load = { try Dataset.load(directory: dataset!) }
        let data = try group.map { try $0.agree("load the data set", load) } ?? load()
        let readout = try data.chooseReadout(requested: operation.flatMap(Readout.init(rawValue:)))
        if isRoot {
            if let w = readout.warning { log("warning: " + w) }
            log(readout.reason)
        }
        var o = try trainingOptions(readout: readout.readout)
        if recipe == .fast && isRoot { log(recipeSummary(o)) }
        var targets = [String: [Float]]()
        if let dir = densityTargets {
            o.densityTargets = (dir as NSString).isAbsolutePath ? dir : FileManager.default.currentDirectoryPath + "/" + dir
            o.densityWeight = densityWeight ?? 1
            try o.validate()
            targets = try loadDensityTargets(o.densityTargets!, train: data.train,
                                             sphere: GridField.sphere(radius: o.hyper.radius, interval: o.hyper.gridInterval),
                                             log: isRoot)
        }
        var startModel: QDFModel? = nil
        if let source = initFrom {
            o.freeze = try FrozenParts(parsing: freeze ?? "none")
            let s = try fineTuningStart(source, data: data, options: o, isRoot: isRoot)
            startModel = s
            o.hyper = s.hyper
        }
        let trainer = try Trainer(dataset: data, options: o, runDirectory: output!, workers: workers, group: group,
                                  densityTargets: targets, start: startModel)
        if isRoot {
            if o.hyper.potentialFeatures > 0 {
                log("potential input: \(o.hyper.potentialFeatures) Gaussians of the external potential into the first functional layer (docs/model.md §19)")
            }
            if let e = o.hyper.environment {
                log("orbital environment: \(e.layers) layers, \(e.features) features, \(e.gaussians) Gaussians, cutoff \(e.cutoff) Å (docs/model.md §18)")
            }
            log(String(format: "%@: %d train, %d val, %d test molecules, %d output(s), %d orbital types; %@ parameters; setup %.1f s",
                       data.name, data.train.count, data.val.count, data.test.count, data.outputs,
                       trainer.model.dictionary.count, "\(trainer.model.layout.totalCount)", Date().timeIntervalSince(start)))
        }
        return trainer
    }

    /// The model a fine-tuning run starts from (`--init-from`): the source's parameters with
    /// a new head for the data set, its dictionary extended; says what was carried over.
    private func fineTuningStart(_ source: String, data: Dataset, options o: TrainingOptions, isRoot: Bool) throws -> QDFModel {
        let (model, path, sourceName, sourceSHA256) = try loadSourceModel(source, purpose: "to start from")
        let start = try FineTuning.start(from: model, sourceName: sourceName,
                                         sourceSHA256: sourceSHA256, dataset: data, operation: o.hyper.operation,
                                         elementBaseline: o.elementBaseline, seed: o.seed, head: initHead)
        if isRoot {
            let name = model.metadata["model_name"].map { " (\($0))" } ?? ""
            log("fine-tuning from \(path)\(name): its orbitals, energy functional and HK map, \(model.hyper.frame.rawValue) frame; \(o.hyper.operation == .dipole ? "the dipole readout (|μ| from the density, no head)" : "a new \(o.hyper.operation.rawValue) head for \(data.outputs) output(s)"); frozen: \(o.freeze)")
            if let f = start.headFit {
                log("head fitted by least squares on \(f.molecules) training molecules: training MAE \(f.maeAfter.map { String(format: "%.5f", $0) }.joined(separator: " / ")) \(data.unit)")
            }
            if !start.addedOrbitals.isEmpty {
                log("the orbital dictionary is extended by \(start.addedOrbitals.count) type(s) the source model lacks: \(start.addedOrbitals.joined(separator: " ")) (initialized as a new model's)")
            }
        }
        return start.model
    }

    /// The chemistry checks on every molecule of the data set (any element), so that
    /// charged, open-shell or implausible molecules are found before training. Allowed
    /// issues: the first three are shown, then a count.
    private func checkChemistry(log shouldLog: Bool) throws {
        var allowedIssues = 0
        for name in ["train.txt", "val.txt", "test.txt"] {
            let path = (dataset! as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let reader = chemistry.checked(try openMoleculeFile(path), check: MoleculeCheck()) { w in
                allowedIssues += 1
                if allowedIssues <= 3 && shouldLog { log("warning: \(w.description)") }
            }
            while try reader.next() != nil {}
        }
        if allowedIssues > 3 && shouldLog { log("warning: \(allowedIssues) allowed chemistry issues in the data set in all (qdf check lists them)") }
    }

    /// The recipe's options with every option given on the command line applied. Options
    /// on which the recipes differ are optional here (nil: the recipe's value); the others
    /// default to the reference values, which every recipe shares.
    func trainingOptions(readout: Readout) throws -> TrainingOptions {
        var o = recipe.options
        o.hyper.basisSet = try BasisSet(basisSet)
        o.hyper.radius = radius; o.hyper.gridInterval = gridInterval
        o.hyper.dim = dim; o.hyper.layerFunctional = layerFunctional
        o.hyper.hiddenHK = hiddenHK; o.hyper.layerHK = layerHK
        o.hyper.operation = readout
        if let f = frame { o.hyper.frame = f }
        o.hyper.potentialFeatures = potentialFeatures
        if environmentLayers > 0 {
            o.hyper.environment = EnvironmentShape(layers: environmentLayers, features: environmentFeatures,
                                                   gaussians: environmentGaussians, cutoff: environmentCutoff)
        }
        o.batchSize = batchSize; o.lrDecay = lrDecay; o.stepSize = stepSize
        o.epochs = epochs; o.seed = seed; o.hkMap = !noHKMap
        o.cacheBytes = Int(cacheGib * Double(1 << 30))
        if let v = lr { o.learningRate = v }
        if let s = schedule { o.schedule = LearningRateSchedule(rawValue: s)! }
        if let v = warmupEpochs { o.warmupEpochs = v }
        if let v = lrMin { o.lrMin = v }
        if let b = timeBudget { o.timeBudget = b == "none" ? nil : try parseDuration(b) }
        o.budgetClock = budgetClock
        if let d = ema { o.ema = d == 0 ? nil : d }
        o.energyLoss = EnergyLoss(loss)!
        if let v = evalEvery { o.evalEvery = v }
        if let v = elementBaseline { o.elementBaseline = v }
        else if readout == .dipole { o.elementBaseline = false }   // the fast recipe's baseline has no place in |μ|
        o.clipNorm = clipNorm; o.potentialWeight = hkWeight; o.potentialGridFraction = hkGridFraction
        return o
    }

    /// The line naming the fast recipe's options as they stand after the flags.
    private func recipeSummary(_ o: TrainingOptions) -> String {
        let budget = timeBudget ?? o.timeBudget.map { String(format: "%gh", $0 / 3600) } ?? "none"
        return "recipe fast: " + String(format: "lr %g, %@ schedule, %g warm-up epoch(s) to lr-min %g, time budget %@, EMA %@, element baseline %@, evaluation every %d epochs, %@ frame",
                                        o.learningRate, o.schedule.rawValue, o.warmupEpochs, o.lrMin,
                                        budget + (o.budgetClock == .cpu && o.timeBudget != nil ? " (CPU time)" : ""),
                                        o.ema.map { "\($0)" } ?? "off", o.elementBaseline ? "on" : "off", o.evalEvery, o.hyper.frame.rawValue)
    }

    /// SIGINT/SIGTERM finish the current batch and checkpoint; under MPI, rank 0's handler
    /// prints the resume command at once, and a stalled exchange names the intact checkpoint.
    private func installSignals(group: MPIProcessGroup?, isRoot: Bool, runPath: String, resumeCommand: String) {
        if let g = group {
            if isRoot { log("data parallel: \(g.size) ranks, workers per rank \(g.workersPerRank.map(String.init).joined(separator: " ")); MPI: \(g.library)") }
            g.stalledHint = "The last checkpoint in \(runPath) is intact. Resume with:\n  \(resumeCommand)"
            installStopHandlers(notice: isRoot ? "qdf: stop requested: finishing the current batch and writing a checkpoint; if the launcher ends the job first, the last checkpoint stays intact. Resume with:\n  \(resumeCommand)\n" : nil)
        } else {
            installStopHandlers()
        }
    }

    /// Trains until done or stopped: the learning curve's rows on standard output, a
    /// progress bar on a terminal, and (under MPI) the time spent exchanging across ranks.
    private func trainShowingProgress(_ trainer: Trainer, group: MPIProcessGroup?, isRoot: Bool) throws -> TrainingOutcome {
        let unit = trainer.dataset.unit
        if isRoot {
            print("Epoch\tTime(sec)\tLoss_E\tLoss_V\tMAE_val(\(unit))\tMAE_test(\(unit))")
            flushStdout()
        }
        let progress = ProgressBar(enabled: stderrIsTTY && isRoot)
        let shouldStop = { group.map { $0.anyTrue(stopSignal != 0) } ?? (stopSignal != 0) }
        let trainingStart = Date()
        let outcome = try trainer.train(shouldStop: shouldStop) { event in
            guard isRoot else { return }
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
        if group != nil && isRoot {
            let elapsed = Date().timeIntervalSince(trainingStart)
            log(String(format: "gradient and loss exchange across ranks (rank 0): %.2f s of %.2f s training (%.1f%%)",
                       trainer.communicationSeconds, elapsed, 100 * trainer.communicationSeconds / max(elapsed, 1e-9)))
        }
        return outcome
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

/// Seconds from "90m", "2.5h", "3600s" or a plain number of seconds.
func parseDuration(_ text: String) throws -> Double {
    let units: [(String, Double)] = [("h", 3600), ("m", 60), ("s", 1)]
    var value = text.trimmingCharacters(in: .whitespaces), factor = 1.0
    for (suffix, f) in units where value.hasSuffix(suffix) { value.removeLast(); factor = f; break }
    guard let v = Double(value), v > 0, v.isFinite else {
        throw ValidationError("--time-budget: expected a positive duration such as 90m, 2.5h or 3600s, not '\(text)'")
    }
    return v * factor
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
    if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return "\(t)s"
}

/// Density targets of the training molecules from a folder of cubes, with a line saying
/// how many were found and how long it took.
func loadDensityTargets(_ dir: String, train: [Molecule], sphere: [SIMD3<Double>], log shouldLog: Bool) throws -> [String: [Float]] {
    let start = Date()
    let (targets, missing) = try DensityTargets.load(directory: dir, molecules: train, sphere: sphere)
    if targets.isEmpty { throw QDFError("no cube named after a training molecule (ID.cube, ID.cube.gz or ID.cube.bz2)", file: dir) }
    if shouldLog {
        log(String(format: "density targets: %d of %d training molecules (%d without a cube) from %@, %.1f s",
                   targets.count, train.count, missing, dir, Date().timeIntervalSince(start)))
    }
    return targets
}

extension BudgetClock: ExpressibleByArgument {}

extension TrainingRecipe: ExpressibleByArgument {}
