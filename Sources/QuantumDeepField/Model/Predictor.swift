import Foundation

// Prediction over streams of molecules: reads, predicts and hands over results in
// batches, so memory does not grow with the number of molecules.

/// The prediction for one molecule.
public struct Prediction: Sendable {
    /// The molecule's id.
    public var id: String
    /// M, its number of atoms.
    public var atomCount: Int
    /// Ê: P values in the model's property unit (e.g. eV).
    public var predicted: [Float]
    /// The input's property values, when it has them (empty otherwise).
    public var correct: [Double]
}

/// Totals of a `Predictor.run`: counts, skipped molecules and error sums per output.
public struct PredictionSummary: Sendable {
    /// Molecules predicted (skipped ones not included).
    public var molecules = 0
    /// Molecules skipped for elements the model never learned, with the reason.
    public var skipped: [(id: String, reason: String)] = []
    /// Σ |E − Ê| per output, over molecules with known values.
    public var absoluteErrorSum: [Double] = []
    /// Σ (E − Ê)² per output, over molecules with known values.
    public var squaredErrorSum: [Double] = []
    /// Molecules that had P property values (the denominator of `mae` and `rmse`).
    public var withValues = 0
    /// Wall-clock seconds of the run, reading included.
    public var seconds = 0.0

    /// Mean absolute error per output (property unit, e.g. eV), or nil if no molecule had values.
    public var mae: [Double]? { withValues > 0 ? absoluteErrorSum.map { $0 / Double(withValues) } : nil }
    /// Root-mean-square error per output (property unit), or nil if no molecule had values.
    public var rmse: [Double]? { withValues > 0 ? squaredErrorSum.map { ($0 / Double(withValues)).squareRoot() } : nil }
}

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

    /// A predictor with its own copy of `model`; `workers` is raised to at least 1. Engines
    /// use `compute`, and `layerCompute` (if given) for the energy functional's upper layers
    /// (`Engine.layerCompute`); the chunked large-molecule path uses `compute` only.
    public init(model: QDFModel, batchSize: Int = Predictor.defaultBatchSize, workers: Int = defaultWorkers,
                compute: any ComputeBackend = defaultCompute, layerCompute: (any ComputeBackend)? = nil) {
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

    /// Predicted values for molecules in memory, in order (placed in the model's frame);
    /// unknown elements throw.
    func values(_ molecules: ArraySlice<Molecule>) throws -> [[Float]] {
        guard model.hyper.frame != .input else { return try placedValues(molecules) }
        let (copies, counts) = framedCopies(molecules)
        return averaged(try placedValues(copies[...]), counts: counts)
    }

    /// Predicted values for molecules exactly where their positions put them.
    private func placedValues(_ molecules: ArraySlice<Molecule>) throws -> [[Float]] {
        if molecules.contains(where: { LargeMolecule.regularValues($0, model: model) > largeMoleculeValues }) {
            var out = [[Float]](), regular = [Molecule](), slots = [Int]()
            for m in molecules {
                if LargeMolecule.regularValues(m, model: model) > largeMoleculeValues {
                    out.append(try LargeMolecule.predict(m, model: model, compute: compute))
                } else {
                    slots.append(out.count); out.append([]); regular.append(m)
                }
            }
            for (slot, v) in zip(slots, try placedValues(regular[...])) { out[slot] = v }
            return out
        }
        let n = workers <= 1 || molecules.count < 2 * workers ? 1 : workers
        let architecture = model.architecture, mols = Array(molecules)
        let timer = (compute as? TimedCompute)?.timer
        return try engines.predict(count: mols.count, workers: n, batchSize: batchSize, parameters: model.parameters) { r in
            var mark = timer == nil ? 0 : PhaseTimer.now()
            let g = try mols[r].map { try architecture.placedGeometry($0) }
            timer?.lap(.geometry, &mark)
            return g
        }
    }

    /// A chunk sharded over `group`: this rank predicts the regular molecules of its shares
    /// (the layout of one process with all ranks' workers, as in `values`) and every size-th
    /// large molecule; rank 0 gets the chunk's values in order, the other ranks [].
    package func shardedValues(_ molecules: [Molecule], group: any ProcessGroup) throws -> [[Float]] {
        guard model.hyper.frame != .input else { return try placedShardedValues(molecules, group: group) }
        let (copies, counts) = framedCopies(molecules)
        let v = try placedShardedValues(copies, group: group)
        return group.rank == 0 ? averaged(v, counts: counts) : []
    }

    private func placedShardedValues(_ molecules: [Molecule], group: any ProcessGroup) throws -> [[Float]] {
        let size = group.size, rank = group.rank
        precondition(group.workersPerRank[rank] == workers, "workers must match the group's")
        var largeIndex = [Int](), regularIndex = [Int]()
        for (i, m) in molecules.enumerated() {
            if LargeMolecule.regularValues(m, model: model) > largeMoleculeValues { largeIndex.append(i) } else { regularIndex.append(i) }
        }
        let total = group.workersPerRank.reduce(0, +), count = regularIndex.count
        let layout = ShareLayout(count: count, shares: total <= 1 || count < 2 * total ? 1 : total,
                                 workersPerRank: group.workersPerRank)
        let regular = regularIndex.map { molecules[$0] }
        let architecture = model.architecture
        let local = try group.agree("predict its molecules") { () -> [[Float]] in
            var local = count == 0 ? [] : try engines.predict(
                count: count, shares: layout.shares, owned: layout.shares(ofRank: rank), batchSize: batchSize,
                parameters: model.parameters) { r in try regular[r].map { try architecture.placedGeometry($0) } }
            for k in largeIndex.indices where k % size == rank {
                local.append(try LargeMolecule.predict(molecules[largeIndex[k]], model: model, compute: compute))
            }
            return local
        }
        let counts = (0..<size).map { r in layout.molecules(ofRank: r).count + largeIndex.indices.filter { $0 % size == r }.count }
        let all = gatherValues(group: group, local: local, countsPerRank: counts, outputs: model.hyper.outputs)
        guard rank == 0 else { return [] }
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
        let v = try values(molecules[...])
        return zip(molecules, v).map { m, v in
            Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties)
        }
    }

    /// Streams every molecule of the readers through the model. Molecules with elements
    /// the model never learned throw, or are skipped and listed when `skipUnknown`.
    /// `handle` gets each prediction in input order (with a `group`: on rank 0 only, whose
    /// summary alone counts the predictions). Throws `QDFError` with the reader's file
    /// and the molecule's line for unknown elements or a property count ≠ P, with the file
    /// for an empty input; reader and `handle` errors pass through.
    public func run(readers: [MoleculeReader], skipUnknown: Bool,
                    handle: (Prediction) throws -> Void) throws -> PredictionSummary {
        var summary = PredictionSummary()
        let P = model.hyper.outputs
        summary.absoluteErrorSum = [Double](repeating: 0, count: P)
        summary.squaredErrorSum = [Double](repeating: 0, count: P)
        let start = Date()
        var pending = [Molecule]()
        let chunkSize = batchSize * (group?.workersPerRank.reduce(0, +) ?? max(1, workers)) * 4
        func flush() throws {
            guard !pending.isEmpty else { return }
            let values = try group.map { try shardedValues(pending, group: $0) } ?? self.values(pending[...])
            if let g = group, g.rank != 0 { pending.removeAll(keepingCapacity: true); return }
            for (m, v) in zip(pending, values) {
                let p = Prediction(id: m.id, atomCount: m.atomCount, predicted: v, correct: m.properties)
                if m.properties.count == P {
                    summary.withValues += 1
                    for q in 0..<P {
                        let e = Double(v[q]) - m.properties[q]
                        summary.absoluteErrorSum[q] += abs(e)
                        summary.squaredErrorSum[q] += e * e
                    }
                }
                summary.molecules += 1
                try handle(p)
            }
            pending.removeAll(keepingCapacity: true)
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
                pending.append(m)
                if pending.count == chunkSize { try flush() }
                if timer != nil { mark = PhaseTimer.now() }
            }
            if read == 0 { throw QDFError("no molecules in the file", file: reader.path) }
        }
        try flush()
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }
}

/// Column names of a predictions TSV: ID, then Correct…, Predict…, Error… (the
/// reference's order); suffixed with the property index when there are several.
public func predictionColumns(outputs: Int, withCorrect: Bool) -> [String] {
    func names(_ base: String) -> [String] { outputs == 1 ? [base] : (0..<outputs).map { "\(base)_\($0)" } }
    return ["ID"] + (withCorrect ? names("Correct") : []) + names("Predict") + (withCorrect ? names("Error") : [])
}

/// One TSV row for a prediction (Error = |Correct − Predict|), tab-separated, no newline,
/// in the order of `predictionColumns`.
public func predictionRow(_ p: Prediction, withCorrect: Bool) -> String {
    var fields = [p.id]
    if withCorrect { fields += p.correct.map { "\($0)" } }
    fields += p.predicted.map { "\(Double($0))" }
    if withCorrect { fields += zip(p.correct, p.predicted).map { "\(abs($0 - Double($1)))" } }
    return fields.joined(separator: "\t")
}
