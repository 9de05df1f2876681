import Foundation

// Adam (Kingma & Ba), as PyTorch implements it (β₁ 0.9, β₂ 0.999, ε 1e−8, no weight
// decay), over the model's flat parameter buffer. A step updates only the tensors
// that received a gradient in that pass, each with its own step count, as PyTorch
// does for parameters whose .grad is None.

/// The Adam optimizer of docs/model.md §8 over a flat parameter buffer. Mutable state:
/// one thread at a time.
package final class Adam {
    /// lr for the next steps (the trainer sets it per epoch from the StepLR schedule).
    package var learningRate: Float
    /// β₁ = 0.9.
    package let beta1: Float = 0.9
    /// β₂ = 0.999.
    package let beta2: Float = 0.999
    /// ε = 1e-8, added to sqrt(v̂).
    package let epsilon: Float = 1e-8
    /// The parameter layout the moments and step counts follow.
    package let layout: ParameterLayout
    /// First moments of the trainable tensors, one after the other in layout order (the
    /// parameter layout itself when nothing is frozen).
    package var m: [Float]
    /// The second moments, laid out as `m`.
    package var v: [Float]
    /// Steps taken by each tensor (by position in the layout; a frozen tensor's stays 0).
    package var steps: [Int]
    /// Where each tensor's moments start in `m` and `v`; nil for a frozen tensor (no state).
    package let momentOffsets: [Int?]

    /// An optimizer with zero moments and step counts for `layout`, keeping moments only
    /// for the tensors that `frozen` does not freeze.
    package init(layout: ParameterLayout, learningRate: Float, frozen: FrozenParts = []) {
        self.layout = layout
        self.learningRate = learningRate
        var offsets = [Int?](), count = 0
        for e in layout.entries {
            if frozen.freezes(tensor: e.name) { offsets.append(nil) } else { offsets.append(count); count += e.count }
        }
        momentOffsets = offsets
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
        steps = [Int](repeating: 0, count: layout.entries.count)
    }

    /// One step for the tensors at the given layout positions (each one's step count + 1).
    /// `gradient` is the caller's buffer of `layout.totalCount` values, read only during
    /// the call; `parameters` must be in the same layout.
    package func step(parameters: inout [Float], gradient: UnsafePointer<Float>, tensors: [Int]) {
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        parameters.withUnsafeMutableBufferPointer { pp in
        m.withUnsafeMutableBufferPointer { mp in
        v.withUnsafeMutableBufferPointer { vp in
            let p = pp.baseAddress!, mm = mp.baseAddress!, vv = vp.baseAddress!
            for t in tensors {
                guard let mo = momentOffsets[t] else { preconditionFailure("Adam step on frozen tensor \(layout.entries[t].name)") }
                steps[t] += 1
                let e = layout.entries[t]
                let bc1 = 1 - pow(Double(b1), Double(steps[t]))
                let bc2 = 1 - pow(Double(b2), Double(steps[t]))
                let stepSize = Float(Double(lr) / bc1)
                let bc2Sqrt = Float(bc2.squareRoot())
                let mt = mm + mo, vt = vv + mo, pt = p + e.offset, gt = gradient + e.offset
                for i in 0..<e.count {
                    let g = gt[i]
                    mt[i] = b1 * mt[i] + (1 - b1) * g
                    vt[i] = b2 * vt[i] + (1 - b2) * g * g
                    let denom = vt[i].squareRoot() / bc2Sqrt + eps
                    pt[i] -= stepSize * mt[i] / denom
                }
            }
        }}}
    }
}

/// Which tensors each pass trains (docs/model.md §8), as positions in the layout.
package struct ParameterGroups: Sendable {
    /// ζ, coefficients (with the orbital environment), W_functional, W_property.
    package let energy: [Int]
    /// ζ, coefficients (with the orbital environment), W_density, W_HK, W_potential.
    package let potential: [Int]

    /// The groups of `layout`, by tensor-name prefix, without the tensors `frozen` freezes.
    package init(_ layout: ParameterLayout, frozen: FrozenParts = []) {
        var e = [Int](), v = [Int]()
        for (i, entry) in layout.entries.enumerated() {
            let n = entry.name
            if frozen.freezes(tensor: n) { continue }
            if n.hasPrefix("coefficient") || n.hasPrefix("zeta") || n.hasPrefix("environment") { e.append(i); v.append(i) }
            else if n.hasPrefix("W_functional") || n.hasPrefix("W_property") { e.append(i) }
            else { v.append(i) }
        }
        energy = e
        potential = v
    }
}
