// The energy functional (spec section 6): a DNN from the molecular orbitals ψ
// to the energy (or any properties), forward and backward.
//
//   h⁰ = ψ,  hˡ⁺¹ = relu(hˡ W_lᵀ + b_l)              every grid point of the batch at once
//   s_m = Σ_{i∈m} h_i  (sum)   or  mean_{i∈m} h_i (mean)
//   Ê_m = W_p s_m + b_p

public enum EnergyFunctional {
    /// h[first] (rows × dim) is given (h[0] = ψ; h[1] when the first layer was computed
    /// through the basis); fills h[first+1...L], the readout s (B × dim) and Ê (B × P).
    static func forward(model: QDFModel, p: UnsafePointer<Float>, rows: Int, rowStart: [Int], rowCount: [Int],
                        h: [UnsafeMutablePointer<Float>], first: Int, s: UnsafeMutablePointer<Float>,
                        out: UnsafeMutablePointer<Float>) {
        let o = model.offsets, d = model.hyper.dim, P = model.hyper.outputs
        DenseStack.forward(rows: rows, width: d, weights: o.functionalWeight.dropFirst(first).map { p + $0 },
                           biases: o.functionalBias.dropFirst(first).map { p + $0 }, activations: Array(h[first...]))
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

    /// Given dÊ (B × P), accumulates gradients of W_property and W_functional[first...]
    /// into `grad` and writes d(h[first]) into `dPsi` (rows × dim). `dTop` and `dScratch`
    /// are rows × dim.
    static func backward(model: QDFModel, p: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                         rows: Int, rowStart: [Int], rowCount: [Int], first: Int,
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
        DenseStack.backward(rows: rows, width: d, weights: o.functionalWeight.dropFirst(first).map { UnsafePointer(p + $0) },
                            activations: h[first...].map { UnsafePointer($0) },
                            weightGrads: o.functionalWeight.dropFirst(first).map { grad + $0 },
                            biasGrads: o.functionalBias.dropFirst(first).map { grad + $0 },
                            dTop: dTop, dScratch: dScratch, dInput: dPsi)
    }
}

/// The energy functional's first layer computed through the basis (exact):
///
///   ψ W₀ᵀ = φ̂ (Ĉ D W₀ᵀ) = φ̂ A,   D = diag(sqrt(N_e/dim) / ‖Ψ_:j‖),   ‖Ψ_:j‖² = Ĉ_:jᵀ G Ĉ_:j,  G = φ̂ᵀφ̂
///
/// so ψ itself is never formed: N_f·N_o² + N_o·dim² + N_f·N_o·dim multiply-adds instead
/// of N_f·N_o·dim + N_f·dim², a saving whenever N_o < dim (QM9: N_o ≈ 100, dim 250).
/// Backward, from dZ₀ = d(ψW₀ᵀ):  dA = φ̂ᵀdZ₀,  dφ̂ = dZ₀Aᵀ + 2φ̂ dG,  dW₀ = dAᵀB (B = ĈD),
/// dB = dA W₀,  dĈ = dB D + (t ⊙ GĈ),  dG = Ĉ diag(t/2) Ĉᵀ,  t_j = −(Σ_k dB_kj Ĉ_kj)·s/n_j³.
public enum FirstLayerThroughBasis {
    /// Whether folding is cheaper for a molecule of N_f points and N_o functions.
    public static func pays(fieldCount nf: Int, orbitalCount no: Int, dim: Int) -> Bool {
        let fold = Double(nf) * Double(no * no) + Double(no) * Double(dim * dim) + Double(nf) * Double(no * dim)
        let plain = Double(nf) * Double(no * dim) + Double(nf) * Double(dim * dim)
        return fold < plain
    }

    public struct Saved {
        public var gram: UnsafeMutablePointer<Float>  // N_o × N_o: G = φ̂ᵀφ̂
        public var gc: UnsafeMutablePointer<Float>    // N_o × dim: G Ĉ
        public var b: UnsafeMutablePointer<Float>     // N_o × dim: B = Ĉ D
        public var a: UnsafeMutablePointer<Float>     // N_o × dim: A = B W₀ᵀ
    }

    /// After `LCAO.basisForward` and `LCAO.coefficientForward`: fills ‖Ψ_:j‖ (s.psiNorm),
    /// the saved matrices, and z0 = φ̂ A (N_f × dim, before bias and ReLU).
    static func forward(_ g: MoleculeGeometry, w0: UnsafePointer<Float>, dim: Int, lcao s: LCAOSaved, fold f: Saved,
                        z0: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount
        let blas = BLAS.shared
        blas.sgemm(.transpose, .none, m: no, n: no, k: nf, a: s.phiHat, lda: no, b: s.phiHat, ldb: no, c: f.gram, ldc: no)
        blas.sgemm(.none, .none, m: no, n: dim, k: no, a: f.gram, lda: no, b: s.cHat, ldb: dim, c: f.gc, ldc: dim)
        columnDots(s.cHat, f.gc, rows: no, cols: dim, ld: dim, into: scratch)
        let scale = (Float(g.electronCount) / Float(dim)).squareRoot()
        let w = max(dim, no)
        let dcol = UnsafeMutableRawPointer(scratch + w).assumingMemoryBound(to: Float.self)
        for j in 0..<dim {
            s.psiNorm[j] = max(Float(max(scratch[j], 0).squareRoot()), normalizationEpsilon)
            dcol[j] = scale / s.psiNorm[j]
        }
        for k in 0..<no {
            let br = f.b + k * dim, cr = s.cHat + k * dim
            for j in 0..<dim { br[j] = cr[j] * dcol[j] }
        }
        blas.sgemm(.none, .transpose, m: no, n: dim, k: dim, a: f.b, lda: dim, b: w0, ldb: dim, c: f.a, ldc: dim)
        blas.sgemm(.none, .none, m: nf, n: dim, k: no, a: s.phiHat, lda: no, b: f.a, ldb: dim, c: z0, ldc: dim)
    }

    /// From dZ₀ (N_f × dim, ReLU mask applied), adds dW₀ and the ζ and coefficient
    /// gradients. Scratch: dA and dB (N_o·dim each), dG (N_o²), dPhiHat (N_f·N_o).
    static func backward(_ g: MoleculeGeometry, offsets o: ParameterOffsets, w0: UnsafePointer<Float>,
                         gradW0: UnsafeMutablePointer<Float>, dim: Int, lcao s: LCAOSaved, fold f: Saved,
                         dZ0: UnsafePointer<Float>, dA: UnsafeMutablePointer<Float>, dB: UnsafeMutablePointer<Float>,
                         dG: UnsafeMutablePointer<Float>, dPhiHat: UnsafeMutablePointer<Float>,
                         grad: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount
        let blas = BLAS.shared
        blas.sgemm(.transpose, .none, m: no, n: dim, k: nf, a: s.phiHat, lda: no, b: dZ0, ldb: dim, c: dA, ldc: dim)
        blas.sgemm(.none, .transpose, m: nf, n: no, k: dim, a: dZ0, lda: dim, b: f.a, ldb: dim, c: dPhiHat, ldc: no)
        blas.sgemm(.transpose, .none, m: dim, n: dim, k: no, a: dA, lda: dim, b: f.b, ldb: dim, beta: 1, c: gradW0, ldc: dim)
        blas.sgemm(.none, .none, m: no, n: dim, k: dim, a: dA, lda: dim, b: w0, ldb: dim, c: dB, ldc: dim)
        // dD_j = Σ_k dB_kj Ĉ_kj;  t_j = dn_j / n_j with dn_j = −dD_j s / n_j².
        columnDots(dB, s.cHat, rows: no, cols: dim, ld: dim, into: scratch)
        let scale = (Float(g.electronCount) / Float(dim)).squareRoot()
        let w = max(dim, no)
        let dcol = UnsafeMutableRawPointer(scratch + w).assumingMemoryBound(to: Float.self)
        let t = dcol + w
        for j in 0..<dim {
            let n = s.psiNorm[j]
            dcol[j] = scale / n
            t[j] = n > normalizationEpsilon ? -Float(scratch[j]) * scale / (n * n * n) : 0
        }
        // dĈ = dB ⊙ D + t ⊙ GĈ (in dB);  Ĉ diag(t/2) into dA for dG.
        for k in 0..<no {
            let dbr = dB + k * dim, gcr = f.gc + k * dim, cr = s.cHat + k * dim, ar = dA + k * dim
            for j in 0..<dim {
                dbr[j] = dbr[j] * dcol[j] + t[j] * gcr[j]
                ar[j] = cr[j] * (0.5 * t[j])
            }
        }
        blas.sgemm(.none, .transpose, m: no, n: no, k: dim, a: dA, lda: dim, b: s.cHat, ldb: dim, c: dG, ldc: no)
        blas.sgemm(.none, .none, m: nf, n: no, k: no, alpha: 2, a: s.phiHat, lda: no, b: dG, ldb: no,
                   beta: 1, c: dPhiHat, ldc: no)
        LCAO.coefficientBackward(g, offsets: o, dim: dim, saved: s, dCHat: dB, grad: grad, scratch: scratch)
        LCAO.basisBackward(g, offsets: o, dim: dim, saved: s, dPhiHat: dPhiHat, grad: grad, scratch: scratch)
    }
}
