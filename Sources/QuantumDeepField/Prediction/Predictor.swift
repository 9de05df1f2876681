import Foundation

// Prediction over streams of molecules: reads, predicts and hands over results in
// chunks, so memory does not grow with the number of molecules. `run` is the one path
// from molecule files to predictions (`qdf predict`, `qdf bench`, the library), on one
// process or sharded over a process group; with `rotations` K > 1 each molecule is
// predicted in the K orientations of `MoleculeRotations.fixed(K)` and its prediction is
// their mean, with their standard deviation as the spread. An interactive input
// (standard input) is predicted molecule by molecule, so a process writing one molecule
// and waiting for its answer gets it at once.

/// Predicts molecules with a fixed model: molecule-parallel, streaming, bounded memory.
/// Use from one thread at a time (it runs its own worker threads inside each call).
public final class Predictor {
    /// The model predicted with (this predictor's own copy).
    public let model: QDFModel
    /// Molecules per engine call; must be ≥ 1 (not checked).
    public var batchSize: Int { didSet { batchSize = max(1, batchSize) } }
    /// Molecule-parallel workers: each runs its own engine on its share of a chunk
    /// (BLAS single-threaded), so the scalar work (geometry, basis functions) is parallel too.
    public var workers: Int
    private let engines: WorkerPool<Engine>
    private let compute: any ComputeBackend

    /// Molecules per engine call by default. Speed is flat from 4 to 32 molecules per call
    /// (233–241 molecules/s predicting 2,000 molecules of 15–29 atoms, AMD EPYC Zen 3), but
    /// peak memory grows with it (99 / 164 / 296 / 554 MiB for 4 / 8 / 16 / 32): docs/speed.md.
    public static let defaultBatchSize = 8

    /// A predictor with its own copy of `model`, its GEMMs through the process's library
    /// (`BLAS.shared`); `workers` is raised to at least 1.
    public convenience init(model: QDFModel, batchSize: Int = Predictor.defaultBatchSize, workers: Int = defaultWorkers) {
        self.init(model: model, batchSize: batchSize, workers: workers, compute: defaultCompute)
    }

    /// A predictor whose engines use `compute`, and `layerCompute` (if given) for the energy
    /// functional's upper layers (`Engine.layerCompute`); the chunked large-molecule path
    /// uses `compute` only.
    package init(model: QDFModel, batchSize: Int = Predictor.defaultBatchSize, workers: Int = defaultWorkers,
                 compute: any ComputeBackend, layerCompute: (any ComputeBackend)? = nil) {
        self.model = model
        self.batchSize = max(1, batchSize)
        self.compute = compute
        self.workers = max(1, workers)
        let architecture = model.architecture
        engines = WorkerPool(count: 1) { Engine(architecture: architecture, compute: compute, layerCompute: layerCompute) }
    }

    /// The processes this predictor is one rank of, or nil. With a group, `run` shards every
    /// chunk of molecules over the ranks exactly as one process with all ranks' workers cuts
    /// it into shares (`workers` must be this rank's entry of `group.workersPerRank`), so the
    /// values are bit-identical to that process's; rank 0 gathers them and alone calls `handle`.
    /// Every rank must read the same molecules.
    public var group: (any ProcessGroup)?

    /// Molecules whose whole-molecule working set exceeds this many Float values (64M =
    /// 256 MB; ~300 atoms) are predicted in chunks by `LargeMolecule`, in bounded memory.
    public var largeMoleculeValues = 64 << 20

    /// For a canonical-frame model: average each prediction over all of the molecule's
    /// canonical frames (`MoleculeFrame.frames(of:)`; more than one only where a degenerate
    /// moment or an undecided sign leaves distinct frames), rather than predicting in the
    /// first alone. On by default (docs/model.md §17 measures both).
    public var frameAveraging = true

    /// The placed copies of molecules (each in the frames it is predicted in) and the
    /// number of copies per molecule.
    private func framedCopies(_ molecules: some Collection<Molecule>) -> (copies: [Molecule], counts: [Int]) {
        var copies = [Molecule](), counts = [Int]()
        copies.reserveCapacity(molecules.count)
        for m in molecules {
            let frames = model.architecture.frames(of: m)
            let used = frameAveraging ? frames[...] : frames.prefix(1)
            counts.append(used.count)
            for f in used { copies.append(f.place(m)) }
        }
        return (copies, counts)
    }

    /// The mean of each molecule's `counts[i]` consecutive rows (a row itself when 1).
    private func averaged(_ values: [[Float]], counts: [Int]) -> [[Float]] {
        if values.count == counts.count { return values }
        var out = [[Float]](), next = 0
        out.reserveCapacity(counts.count)
        for k in counts {
            if k == 1 { out.append(values[next]); next += 1; continue }
            var sum = [Double](repeating: 0, count: values[next].count)
            for r in next..<(next + k) { for q in sum.indices { sum[q] += Double(values[r][q]) } }
            out.append(sum.map { Float($0 / Double(k)) })
            next += k
        }
        return out
    }

    /// Predicted values for molecules, in order (placed in the model's frame, averaged over
    /// its frames); unknown elements throw. With a `group` the molecules are sharded over
    /// its ranks (every rank passes the same molecules) and rank 0 gets the values, the
    /// other ranks [].
    func values(_ molecules: [Molecule], group: (any ProcessGroup)? = nil) throws -> [[Float]] {
        guard model.hyper.frame != .input else { return try placedValues(molecules, group: group) }
        let (copies, counts) = framedCopies(molecules)
        let v = try placedValues(copies, group: group)
        return (group?.rank ?? 0) == 0 ? averaged(v, counts: counts) : []
    }

    /// Predicted values for molecules exactly where their positions put them. The regular
    /// molecules are cut into the shares of one process with all ranks' workers (each rank
    /// predicts its own shares, one engine per share); large ones go to `LargeMolecule`,
    /// every size-th to a rank. Rank 0 (the only one without a group) gets the values in
    /// order, the other ranks [].
    private func placedValues(_ molecules: [Molecule], group: (any ProcessGroup)?) throws -> [[Float]] {
        let size = group?.size ?? 1, rank = group?.rank ?? 0
        let workersPerRank = group?.workersPerRank ?? [max(1, workers)]
        precondition(group == nil || workersPerRank[rank] == workers, "workers must match the group's")
        var largeIndex = [Int](), regularIndex = [Int]()
        for (i, m) in molecules.enumerated() {
            if LargeMolecule.regularValues(m, model: model) > largeMoleculeValues { largeIndex.append(i) } else { regularIndex.append(i) }
        }
        let total = workersPerRank.reduce(0, +), count = regularIndex.count
        let layout = ShareLayout(count: count, shares: total <= 1 || count < 2 * total ? 1 : total, workersPerRank: workersPerRank)
        let regular = regularIndex.map { molecules[$0] }
        let architecture = model.architecture
        let timer = (compute as? TimedCompute)?.timer
        func predictMine() throws -> [[Float]] {
            var local = count == 0 ? [] : try engines.predict(layout: layout, rank: rank, batchSize: batchSize,
                                                              parameters: model.parameters) { r in
                var mark = timer == nil ? 0 : PhaseTimer.now()
                let g = try regular[r].map { try architecture.placedGeometry($0) }
                timer?.lap(.geometry, &mark)
                return g
            }
            for k in largeIndex.indices where k % size == rank {
                local.append(try LargeMolecule.predict(molecules[largeIndex[k]], model: model, compute: compute))
            }
            return local
        }
        let all: [[Float]]
        if let group {
            let local = try group.agree("predict its molecules", predictMine)
            let counts = (0..<size).map { r in layout.molecules(ofRank: r).count + largeIndex.indices.filter { $0 % size == r }.count }
            all = gatherValues(group: group, local: local, countsPerRank: counts, outputs: model.hyper.outputs)
            guard rank == 0 else { return [] }
        } else {
            all = try predictMine()
        }
        var out = [[Float]](repeating: [], count: molecules.count), next = 0
        for r in 0..<size {
            for i in layout.molecules(ofRank: r) { out[regularIndex[i]] = all[next]; next += 1 }
            for k in largeIndex.indices where k % size == r { out[largeIndex[k]] = all[next]; next += 1 }
        }
        return out
    }

    /// Predicts molecules held in memory, in order. Throws `QDFError` (no file/line) for a
    /// molecule with elements outside the model's dictionary.
    public func predict(_ molecules: [Molecule]) throws -> [Prediction] {
        let v = try values(molecules)
        return zip(molecules, v).map { m, v in
            Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties)
        }
    }

    /// Streams every molecule of the readers through the model and hands each prediction
    /// to `handle`, in input order, with its file and line. Molecules with elements the
    /// model never learned throw, or are skipped and listed when `skipUnknown`.
    /// - Parameters:
    ///   - rotations: K ≥ 1 orientations per molecule (1: as given); the prediction is
    ///     their mean and `spread` their standard deviation.
    ///   - interactive: predict each molecule as soon as it is read (for standard input).
    ///   - handle: with a `group`, called on rank 0 only, whose summary alone counts the
    ///     predictions.
    /// Throws `QDFError` with the reader's file and the molecule's line for unknown
    /// elements or a property count ≠ P, with the file for an input without molecules
    /// (unless its reader skipped some); reader and `handle` errors pass through.
    public func run(readers: [MoleculeReader], skipUnknown: Bool = false, rotations: Int = 1, interactive: Bool = false,
                    handle: (Prediction) throws -> Void) throws -> PredictionSummary {
        let P = model.hyper.outputs
        let turns = MoleculeRotations.fixed(max(1, rotations)), K = turns.count
        var summary = PredictionSummary(outputs: P)
        let start = Date()
        // Every rank of a group must cut the input into the same chunks: size them by all ranks' workers.
        let allWorkers = group?.workersPerRank.reduce(0, +) ?? max(1, workers)
        let chunk = interactive ? 1 : max(1, batchSize * allWorkers * 4 / K)
        var pending = [(molecule: Molecule, source: String, line: Int)]()
        func flush() throws {
            guard !pending.isEmpty else { return }
            defer { pending.removeAll(keepingCapacity: true) }
            let copies = K == 1 ? pending.map(\.molecule) : pending.flatMap { p in turns.map { p.molecule.rotated(by: $0) } }
            let values = try self.values(copies, group: group)
            if let g = group, g.rank != 0 { return }
            for (k, p) in pending.enumerated() {
                let (mean, spread) = K == 1 ? (values[k], []) : Self.meanAndSpread(values[(k * K)..<((k + 1) * K)], outputs: P)
                let prediction = Prediction(id: p.molecule.id, source: p.source, line: p.line, atomCount: p.molecule.atomCount,
                                            predicted: mean, correct: p.molecule.properties, spread: spread)
                summary.add(prediction)
                try handle(prediction)
            }
        }
        let timer = (compute as? TimedCompute)?.timer
        for reader in readers {
            var read = 0
            var mark = timer == nil ? 0 : PhaseTimer.now()
            while let m = try reader.next() {
                timer?.lap(.reading, &mark)
                read += 1
                if !m.properties.isEmpty && m.properties.count != P {
                    throw QDFError("molecule '\(m.id)' has \(m.properties.count) property values; the model predicts \(P)",
                                   file: reader.path, line: reader.moleculeLine)
                }
                if let message = model.dictionary.refusal(m, basis: model.basis) {
                    if skipUnknown { summary.skipped.append((m.id, message)); continue }
                    throw QDFError(message, file: reader.path, line: reader.moleculeLine)
                }
                pending.append((m, reader.path, reader.moleculeLine))
                if pending.count >= chunk { try flush() }
                if timer != nil { mark = PhaseTimer.now() }
            }
            if read == 0 && reader.skipped.isEmpty { throw QDFError("no molecules in the file", file: reader.path) }
        }
        try flush()
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// The mean over a molecule's K orientations per output and (K > 1) their sample
    /// standard deviation.
    private static func meanAndSpread(_ values: ArraySlice<[Float]>, outputs P: Int) -> (mean: [Float], spread: [Float]) {
        let K = values.count
        var mean = [Float](repeating: 0, count: P), spread = [Float]()
        for q in 0..<P {
            let xs = values.map { Double($0[q]) }
            let mu = xs.reduce(0, +) / Double(K)
            mean[q] = Float(mu)
            if K > 1 {
                let v = xs.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(K - 1)
                spread.append(Float(v.squareRoot()))
            }
        }
        return (mean, spread)
    }
}
