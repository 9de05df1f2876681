// The energy functional (spec section 6): a DNN from the molecular orbitals ψ
// to the energy (or any properties), forward and backward.
//
//   h⁰ = ψ,  hˡ⁺¹ = relu(hˡ W_lᵀ + b_l)              every grid point of the batch at once
//   s_m = Σ_{i∈m} h_i  (sum)   or  mean_{i∈m} h_i (mean)
//   Ê_m = W_p s_m + b_p

public enum EnergyFunctional {
    /// h[0] = ψ (rows × dim) is given; fills h[1...L], the readout s (B × dim) and Ê (B × P).
    static func forward(model: QDFModel, p: UnsafePointer<Float>, rows: Int, rowStart: [Int], rowCount: [Int],
                        h: [UnsafeMutablePointer<Float>], s: UnsafeMutablePointer<Float>,
                        out: UnsafeMutablePointer<Float>) {
        let o = model.offsets, d = model.hyper.dim, P = model.hyper.outputs
        DenseStack.forward(rows: rows, width: d, weights: o.functionalWeight.map { p + $0 },
                           biases: o.functionalBias.map { p + $0 }, activations: h)
        let top = h[model.hyper.layerFunctional]
        let B = rowStart.count
        for m in 0..<B {
            let sm = s + m * d
            sm.update(repeating: 0, count: d)
            for i in rowStart[m]..<(rowStart[m] + rowCount[m]) {
                let r = top + i * d
                for j in 0..<d { sm[j] += r[j] }
            }
            if model.hyper.operation == .mean {
                let inv = 1 / Float(max(rowCount[m], 1))
                for j in 0..<d { sm[j] *= inv }
            }
        }
        BLAS.shared.sgemm(.none, .transpose, m: B, n: P, k: d, a: s, lda: d, b: p + o.propertyWeight, ldb: d,
                          c: out, ldc: P)
        for m in 0..<B { for q in 0..<P { out[m * P + q] += p[o.propertyBias + q] } }
    }

    /// Given dÊ (B × P), accumulates gradients of W_property and W_functional into
    /// `grad` and writes dψ into `dPsi` (rows × dim). `dTop` and `dScratch` are rows × dim.
    static func backward(model: QDFModel, p: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                         rows: Int, rowStart: [Int], rowCount: [Int],
                         h: [UnsafeMutablePointer<Float>], s: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                         ds: UnsafeMutablePointer<Float>, dTop: UnsafeMutablePointer<Float>,
                         dScratch: UnsafeMutablePointer<Float>, dPsi: UnsafeMutablePointer<Float>) {
        let o = model.offsets, d = model.hyper.dim, P = model.hyper.outputs
        let B = rowStart.count
        // Ê = s W_pᵀ + b_p
        BLAS.shared.sgemm(.transpose, .none, m: P, n: d, k: B, a: dOut, lda: P, b: s, ldb: d,
                          beta: 1, c: grad + o.propertyWeight, ldc: d)
        for m in 0..<B { for q in 0..<P { grad[o.propertyBias + q] += dOut[m * P + q] } }
        BLAS.shared.sgemm(.none, .none, m: B, n: d, k: P, a: dOut, lda: P, b: p + o.propertyWeight, ldb: d,
                          c: ds, ldc: d)
        // Readout: every row of molecule m receives ds_m (÷ N_f for mean).
        for m in 0..<B {
            let dsm = ds + m * d
            let f: Float = model.hyper.operation == .mean ? 1 / Float(max(rowCount[m], 1)) : 1
            for i in rowStart[m]..<(rowStart[m] + rowCount[m]) {
                let r = dTop + i * d
                for j in 0..<d { r[j] = dsm[j] * f }
            }
        }
        DenseStack.backward(rows: rows, width: d, weights: o.functionalWeight.map { UnsafePointer(p + $0) },
                            activations: h.map { UnsafePointer($0) },
                            weightGrads: o.functionalWeight.map { grad + $0 }, biasGrads: o.functionalBias.map { grad + $0 },
                            dTop: dTop, dScratch: dScratch, dInput: dPsi)
    }
}
