import Foundation

// The training step of spec section 8 on one mini-batch: forward the E path,
// back-propagate Loss_E, one Adam step on the E tensors; then forward again with the
// updated parameters, the V path, back-propagate Loss_V, one Adam step on the V tensors.
//
// Both cores work molecule-parallel: the batch is split into contiguous shares, each
// worker runs its own engine (single-threaded BLAS) into its own gradient buffer, and the
// shares' gradients are combined with the losses' weights (molecules for Loss_E, grid
// points for Loss_V), so the result is the gradient of the whole batch's mean loss. The
// split depends only on the batch, so training stays deterministic (and resumable bit
// for bit).

public final class TrainingStep {
    public let model: QDFModel
    public let groups: ParameterGroups
    /// Molecule-parallel workers (1: one engine, multi-threaded BLAS).
    public let workers: Int
    let engines: [Engine]
    /// One gradient buffer per worker (parameter layout); the batch's gradient ends in [0].
    let gradients: [Buffer]

    public init(model: QDFModel, workers: Int = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))) {
        self.model = model
        self.workers = max(1, workers)
        groups = ParameterGroups(model.layout)
        engines = (0..<self.workers).map { _ in Engine(model: model) }
        gradients = (0..<self.workers).map { _ in Buffer(model.layout.totalCount) }
    }

    /// One mini-batch; returns (Loss_E, Loss_V), Loss_V = 0 without the HK map.
    public func step(_ batch: [MoleculeGeometry], adam: Adam, hkMap: Bool) -> (Double, Double) {
        let lossE = gradient(batch, potential: false)
        adam.step(parameters: &model.parameters, gradient: gradients[0].pointer, tensors: groups.energy)
        guard hkMap else { return (lossE, 0) }
        let lossV = gradient(batch, potential: true)
        adam.step(parameters: &model.parameters, gradient: gradients[0].pointer, tensors: groups.potential)
        return (lossE, lossV)
    }

    /// The batch's mean loss and its gradient (left in gradients[0]).
    func gradient(_ batch: [MoleculeGeometry], potential: Bool) -> Double {
        let n = min(workers, batch.count)
        let count = model.layout.totalCount
        if n <= 1 { return runShare(0, batch, potential: potential) }
        // Shares and their weights in the batch's mean.
        let bounds = (0...n).map { batch.count * $0 / n }
        let shares = (0..<n).map { batch[bounds[$0]..<bounds[$0 + 1]] }
        let weights: [Double] = potential
            ? shares.map { Double($0.reduce(0) { $0 + $1.fieldCount }) }
            : shares.map { Double($0.count) }
        let total = weights.reduce(0, +)
        var losses = [Double](repeating: 0, count: n)
        let me = UnsafeTransfer(self)
        losses.withUnsafeMutableBufferPointer { lp in
            let out = UnsafeTransfer(lp.baseAddress!)
            BLAS.shared.singleThreaded {
                DispatchQueue.concurrentPerform(iterations: n) { w in
                    out.value[w] = me.value.runShare(w, Array(shares[w]), potential: potential)
                }
            }
        }
        // gradients[0] = Σ_w (weight_w / total) · gradient_w
        let g0 = gradients[0].pointer
        let f0 = Float(weights[0] / total)
        for i in 0..<count { g0[i] *= f0 }
        for w in 1..<n {
            let f = Float(weights[w] / total), gw = gradients[w].pointer
            for i in 0..<count { g0[i] += f * gw[i] }
        }
        return zip(losses, weights).reduce(0) { $0 + $1.0 * $1.1 } / total
    }

    private func runShare(_ w: Int, _ part: [MoleculeGeometry], potential: Bool) -> Double {
        let g = gradients[w].pointer
        g.update(repeating: 0, count: model.layout.totalCount)
        return potential ? engines[w].potentialLossAndGradient(part, grad: g)
                         : engines[w].energyLossAndGradient(part, grad: g)
    }
}
