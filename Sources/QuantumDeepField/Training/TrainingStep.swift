import Foundation

// The training step (docs/model.md §8) on one mini-batch: forward the E path,
// back-propagate Loss_E, one Adam step on the E tensors; then forward again with the
// updated parameters, the V path, back-propagate Loss_V, one Adam step on the V tensors.
//
// Both cores work molecule-parallel: the batch is split into contiguous shares, each
// worker runs its own engine (single-threaded BLAS) into its own gradient buffer, and the
// shares' gradients are combined through the compute backend with the losses' weights (molecules for Loss_E, grid
// points for Loss_V), so the result is the gradient of the whole batch's mean loss. The
// split depends only on the batch, so training stays deterministic (and resumable bit
// for bit). With a `ProcessGroup` (several processes, DataParallel.swift) each rank runs
// only its shares of the global batch and the shares are combined in the same order.

/// One worker's engine and gradient buffer (parameter layout).
package final class GradientWorker {
    let engine: Engine
    var gradient: [Float]
    init(architecture: ModelArchitecture, compute: any ComputeBackend, frozen: FrozenParts) {
        engine = Engine(architecture: architecture, compute: compute)
        engine.frozen = frozen
        gradient = [Float](repeating: 0, count: architecture.layout.totalCount)
    }

    /// The share's mean loss; its gradient replaces `gradient`.
    func run(_ part: [MoleculeGeometry], parameters: [Float], potential: Bool, loss: EnergyLoss, densityWeight: Float,
             sample: PotentialSample?) -> Double {
        for i in gradient.indices { gradient[i] = 0 }
        return potential ? engine.potentialLossAndGradient(part, parameters: parameters, gradient: &gradient,
                                                           densityWeight: densityWeight, sample: sample)
                         : engine.energyLossAndGradient(part, parameters: parameters, gradient: &gradient, loss: loss)
    }
}

/// The training step (docs/model.md §8) for a model whose parameters the caller owns.
/// Holds one engine per worker: use from one thread at a time.
package final class TrainingStep {
    /// The architecture the workers' engines are built for.
    package let architecture: ModelArchitecture
    /// The tensors the E step and the V step update (frozen ones excluded).
    package let groups: ParameterGroups
    /// Parts kept fixed (fine-tuning): no gradient work, no Adam step; with the orbitals
    /// frozen the V step is skipped (it only shapes ψ, which is then fixed).
    package let frozen: FrozenParts
    /// Molecule-parallel workers (each an engine and a gradient buffer).
    package let workers: Int
    /// Where GEMMs run and how the shares' gradients are combined.
    package let compute: any ComputeBackend
    /// The processes this step is one rank of (data parallelism, DataParallel.swift), or nil.
    package let group: (any ProcessGroup)?
    /// Seconds spent exchanging gradients and losses with the other ranks (0 without a group).
    package private(set) var communicationSeconds = 0.0
    private let pool: WorkerPool<GradientWorker>
    /// The loss on the properties (Loss_E); `.mse` is the reference's.
    package var energyLoss: EnergyLoss = .mse
    /// When set, each pass's gradient (over the tensors that pass trains) is scaled down to
    /// this Euclidean norm if it is longer.
    package var clipNorm: Double? = nil
    /// Weight of Loss_V: the V pass's gradient is multiplied by it (1: the reference).
    package var potentialWeight: Double = 1
    /// Weight w of the density term Loss_ρ in the V pass (docs/model.md §16), for the
    /// molecules whose geometry carries a density target; 0: off (the reference).
    package var densityWeight: Double = 0
    /// The expected share of each molecule's grid points the V step fits (docs/model.md §7,
    /// "The sampled V step"); 1: all of them (the reference).
    package var potentialGridFraction: Double = 1
    /// Mixed with the V step's count into each step's `PotentialSample.key` (the run's seed).
    package var potentialSampleSeed: UInt64 = 0
    private var received: [Float] = []

    /// A step with `workers` (at least 1) engines on `compute`, created now. With a `group`,
    /// `workers` must be this rank's entry of `group.workersPerRank` (traps otherwise).
    package init(architecture: ModelArchitecture, workers: Int = defaultWorkers, compute: any ComputeBackend = defaultCompute,
                group: (any ProcessGroup)? = nil, frozen: FrozenParts = []) {
        self.architecture = architecture
        self.frozen = frozen
        self.workers = max(1, workers)
        self.compute = compute
        self.group = group
        if let g = group { precondition(g.workersPerRank[g.rank] == self.workers, "workers must match the group's") }
        groups = ParameterGroups(architecture.layout, frozen: frozen)
        pool = WorkerPool(count: self.workers) { GradientWorker(architecture: architecture, compute: compute, frozen: frozen) }
    }

    /// One mini-batch: updates `parameters` (E step, then V step); returns (Loss_E, Loss_V),
    /// Loss_V = 0 without the HK map or with frozen orbitals. An empty batch changes nothing (no Adam step) and
    /// returns (0, 0). The geometries need P property values and, with `hkMap`, the
    /// potential (traps otherwise). Deterministic for a given batch whatever the worker
    /// count's timing.
    package func step(_ batch: [MoleculeGeometry], parameters: inout [Float], adam: Adam, hkMap: Bool) -> (Double, Double) {
        guard !batch.isEmpty else { return (0, 0) }
        precondition(group == nil, "a step in a process group takes this rank's geometries: step(local:fieldCounts:...)")
        let fieldCounts = batch.map(\.fieldCount)
        let lossE = pass(batch, fieldCounts, parameters: &parameters, adam: adam, potential: false)
        guard hkMap, !frozen.contains(.orbitals) else { return (lossE, 0) }
        let lossV = pass(batch, fieldCounts, parameters: &parameters, adam: adam, potential: true)
        return (lossE, lossV)
    }

    /// In a process group: the share layout of a global batch of `count` molecules (the
    /// cut a single process with all ranks' workers would make).
    package func layout(batchCount count: Int) -> ShareLayout {
        let perRank = group?.workersPerRank ?? [workers]
        return ShareLayout(count: count, shares: max(1, min(perRank.reduce(0, +), count)), workersPerRank: perRank)
    }

    /// One global mini-batch as one rank of `group`: `local` holds the geometries of this
    /// rank's molecules (`layout(batchCount:).molecules(ofRank:)`), `fieldCounts` the grid
    /// points N_f of every molecule of the global batch (the V step's share weights). Every
    /// rank gets the same (Loss_E, Loss_V) and the same parameters, bit-identical to a
    /// single-process `step` with all ranks' workers. Traps without a group.
    package func step(local: [MoleculeGeometry], fieldCounts: [Int], parameters: inout [Float], adam: Adam, hkMap: Bool) -> (Double, Double) {
        precondition(group != nil, "step(local:...) is a step in a process group")
        let lossE = pass(local, fieldCounts, parameters: &parameters, adam: adam, potential: false)
        guard hkMap, !frozen.contains(.orbitals) else { return (lossE, 0) }
        let lossV = pass(local, fieldCounts, parameters: &parameters, adam: adam, potential: true)
        return (lossE, lossV)
    }

    /// One pass (E or V) over a global batch of `fieldCounts.count` molecules, of which
    /// `local` are this rank's (the whole batch without a group): the shares' mean losses
    /// and gradients (one worker per share this rank owns), the gradients combined in share
    /// order with the shares' weights in the batch's mean (molecules for Loss_E, grid
    /// points for Loss_V; through the chain of ranks in a group), then one Adam step on
    /// that pass's tensors. Returns the batch's mean loss.
    private func pass(_ local: [MoleculeGeometry], _ fieldCounts: [Int], parameters: inout [Float],
                      adam: Adam, potential: Bool) -> Double {
        let layout = self.layout(batchCount: fieldCounts.count)
        let n = layout.shares, rank = group?.rank ?? 0
        let weights: [Double] = (0..<n).map { s in
            let r = layout.molecules(ofShare: s)
            return potential ? Double(fieldCounts[r].reduce(0, +)) : Double(r.count)
        }
        let total = weights.reduce(0, +)
        let mine = layout.shares(ofRank: rank)
        let base = layout.molecules(ofRank: rank).lowerBound
        precondition(local.count == layout.molecules(ofRank: rank).count, "local geometries of this rank's molecules")
        let shares = mine.map { s in
            let r = layout.molecules(ofShare: s)
            return Array(local[(r.lowerBound - base)..<(r.upperBound - base)])
        }
        let current = parameters, loss = energyLoss, densityWeight = Float(self.densityWeight)
        let sample = potential ? potentialSample(adam: adam) : nil
        let losses = pool.run(shares.count) { w, worker in
            worker.run(shares[w], parameters: current, potential: potential, loss: loss, densityWeight: densityWeight,
                       sample: sample)
        }
        let start = Date()
        var allLosses = losses
        if let group {
            allLosses = [Double](repeating: 0, count: n)
            for (i, s) in mine.enumerated() { allLosses[s] = losses[i] }
            group.sum(&allLosses)
        }
        let tensors = potential ? groups.potential : groups.energy
        let shareWeights = mine.map { Float(weights[$0] / total) }
        let count = architecture.layout.totalCount
        func apply(_ g: UnsafeMutablePointer<Float>) {
            rescale(g, tensors: tensors, potential: potential)
            adam.step(parameters: &parameters, gradient: g, tensors: tensors)
        }
        pool.withAll { workers in
            withGradients(of: workers.prefix(shares.count)) { parts in
                guard let group else {
                    // gradient_0 = Σ_w (weight_w / total) · gradient_w
                    if n > 1 { compute.combineGradients(parts, weights: shareWeights, count: count) }
                    apply(parts[0])
                    return
                }
                if received.count != count { received = [Float](repeating: 0, count: count) }
                received.withUnsafeMutableBufferPointer { buffer in
                    let g = combineInShareOrder(group: group, compute: compute, parts: parts, weights: shareWeights,
                                                count: count, lastOwner: layout.lastOwner, combine: n > 1,
                                                buffer: buffer.baseAddress!)
                    communicationSeconds += Date().timeIntervalSince(start)
                    apply(g)
                }
            }
        }
        return zip(allLosses, weights).reduce(0) { $0 + $1.0 * $1.1 } / total
    }

    /// This V step's sample (nil when it fits every grid point): its key from the seed and
    /// the number of V steps taken so far (Adam's count of the first V tensor, which the
    /// checkpoint keeps and every rank shares), so a resumed or distributed run draws the
    /// same points.
    private func potentialSample(adam: Adam) -> PotentialSample? {
        guard potentialGridFraction < 1, let first = groups.potential.first else { return nil }
        let count = UInt64(adam.steps[first])
        return PotentialSample(fraction: potentialGridFraction,
                               key: PotentialSample.mix(potentialSampleSeed) ^ (count &* 0xD6E8_FEB8_6659_FD93))
    }

    /// Runs `body` with the base address of each worker's gradient buffer, all pinned for
    /// the whole call.
    private func withGradients(of workers: ArraySlice<GradientWorker>,
                               _ body: ([UnsafeMutablePointer<Float>]) -> Void) {
        var parts = [UnsafeMutablePointer<Float>]()
        func pin(_ rest: ArraySlice<GradientWorker>) {
            guard let first = rest.first else { body(parts); return }
            first.gradient.withUnsafeMutableBufferPointer { parts.append($0.baseAddress!); pin(rest.dropFirst()) }
        }
        pin(workers)
    }

    /// Applies the Loss_V weight and the clipping to a pass's combined gradient, in place.
    private func rescale(_ g: UnsafeMutablePointer<Float>, tensors: [Int], potential: Bool) {
        let scale = gradientScale(g, tensors: tensors, potential: potential)
        if scale != 1 { for t in tensors { for i in architecture.layout.entries[t].range { g[i] *= scale } } }
    }

    /// The factor applied to a pass's gradient: the Loss_V weight, then clipping to `clipNorm`.
    private func gradientScale(_ g: UnsafePointer<Float>, tensors: [Int], potential: Bool) -> Float {
        var scale = potential ? potentialWeight : 1
        if let clip = clipNorm {
            var sq = 0.0
            for t in tensors { for i in architecture.layout.entries[t].range { sq += Double(g[i]) * Double(g[i]) } }
            let norm = sq.squareRoot() * scale
            if norm > clip { scale *= clip / norm }
        }
        return Float(scale)
    }
}
