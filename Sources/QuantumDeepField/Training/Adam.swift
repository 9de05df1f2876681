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
    /// First and second moments, in the parameter layout.
    package var m: [Float]
    /// The second moments (`layout.totalCount` values).
    package var v: [Float]
    /// Steps taken by each tensor (by position in the layout).
    package var steps: [Int]

    /// An optimizer with zero moments and step counts for `layout`.
    package init(layout: ParameterLayout, learningRate: Float) {
        self.layout = layout
        self.learningRate = learningRate
        m = [Float](repeating: 0, count: layout.totalCount)
        v = [Float](repeating: 0, count: layout.totalCount)
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
                steps[t] += 1
                let e = layout.entries[t]
                let bc1 = 1 - pow(Double(b1), Double(steps[t]))
                let bc2 = 1 - pow(Double(b2), Double(steps[t]))
                let stepSize = Float(Double(lr) / bc1)
                let bc2Sqrt = Float(bc2.squareRoot())
                for i in e.range {
                    let g = gradient[i]
                    mm[i] = b1 * mm[i] + (1 - b1) * g
                    vv[i] = b2 * vv[i] + (1 - b2) * g * g
                    let denom = vv[i].squareRoot() / bc2Sqrt + eps
                    p[i] -= stepSize * mm[i] / denom
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

    /// The groups of `layout`, by tensor-name prefix.
    package init(_ layout: ParameterLayout) {
        var e = [Int](), v = [Int]()
        for (i, entry) in layout.entries.enumerated() {
            let n = entry.name
            if n.hasPrefix("coefficient") || n.hasPrefix("zeta") || n.hasPrefix("environment") { e.append(i); v.append(i) }
            else if n.hasPrefix("W_functional") || n.hasPrefix("W_property") { e.append(i) }
            else { v.append(i) }
        }
        energy = e
        potential = v
    }
}
