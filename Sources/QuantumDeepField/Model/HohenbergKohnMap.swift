// The Hohenberg–Kohn map (spec section 7): a DNN from the electron density ρ at
// each grid point to the external potential V there, forward and backward.
//
//   ρ_i = Σ_j ψ_ij²
//   g⁰_i = ρ_i w_d + b_d                 (1 → H, no activation)
//   gˡ⁺¹ = relu(gˡ W_HK,lᵀ + b_HK,l)
//   V̂_i = w_v · g_i + b_v                 (H → 1)

public enum HohenbergKohnMap {
    /// ρ_i = Σ_j ψ_ij² for every row.
    static func density(psi: UnsafePointer<Float>, rows: Int, dim: Int, rho: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let r = psi + i * dim
            var acc: Float = 0
            for j in 0..<dim { acc += r[j] * r[j] }
            rho[i] = acc
        }
    }

    /// Fills g[0...L] (rows × H) and V̂ (rows).
    static func forward(model: QDFModel, p: UnsafePointer<Float>, rows: Int, rho: UnsafePointer<Float>,
                        g: [UnsafeMutablePointer<Float>], vHat: UnsafeMutablePointer<Float>) {
        let o = model.offsets, H = model.hyper.hiddenHK
        let wd = p + o.densityWeight, bd = p + o.densityBias
        let g0 = g[0]
        for i in 0..<rows {
            let r = g0 + i * H, x = rho[i]
            for j in 0..<H { r[j] = x * wd[j] + bd[j] }
        }
        DenseStack.forward(rows: rows, width: H, weights: o.hkWeight.map { p + $0 }, biases: o.hkBias.map { p + $0 },
                           activations: g)
        let top = g[model.hyper.layerHK]
        let wv = p + o.potentialWeight, bv = p[o.potentialBias]
        for i in 0..<rows {
            let r = top + i * H
            var acc: Float = 0
            for j in 0..<H { acc += r[j] * wv[j] }
            vHat[i] = acc + bv
        }
    }

    /// Given dV̂ (rows), accumulates the HK-side gradients and writes dρ (rows).
    /// `dTop`, `dScratch`, `dG0` are rows × H.
    static func backward(model: QDFModel, p: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>, rows: Int,
                         rho: UnsafePointer<Float>, g: [UnsafeMutablePointer<Float>], dV: UnsafePointer<Float>,
                         dTop: UnsafeMutablePointer<Float>, dScratch: UnsafeMutablePointer<Float>,
                         dG0: UnsafeMutablePointer<Float>, dRho: UnsafeMutablePointer<Float>) {
        let o = model.offsets, H = model.hyper.hiddenHK
        let top = g[model.hyper.layerHK]
        let wv = p + o.potentialWeight
        let gwv = grad + o.potentialWeight
        var gbv: Float = 0
        for i in 0..<rows {
            let r = top + i * H, dr = dTop + i * H, dv = dV[i]
            gbv += dv
            for j in 0..<H { gwv[j] += dv * r[j]; dr[j] = dv * wv[j] }
        }
        grad[o.potentialBias] += gbv
        DenseStack.backward(rows: rows, width: H, weights: o.hkWeight.map { UnsafePointer(p + $0) },
                            activations: g.map { UnsafePointer($0) },
                            weightGrads: o.hkWeight.map { grad + $0 }, biasGrads: o.hkBias.map { grad + $0 },
                            dTop: dTop, dScratch: dScratch, dInput: dG0)
        let wd = p + o.densityWeight
        let gwd = grad + o.densityWeight, gbd = grad + o.densityBias
        for i in 0..<rows {
            let r = dG0 + i * H, x = rho[i]
            var acc: Float = 0
            for j in 0..<H {
                gwd[j] += r[j] * x
                gbd[j] += r[j]
                acc += r[j] * wd[j]
            }
            dRho[i] = acc
        }
    }
}
