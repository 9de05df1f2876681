import Foundation

// The energy functional (docs/model.md §6): a DNN from the molecular orbitals ψ to the
// energy (or any properties), forward and backward, every piece of it here:
//
//   z⁰ = ψ W₀ᵀ            (or φ̂ A through the basis, §12: `FirstLayerThroughBasis`)
//   h¹ = relu(z⁰ + b₀),  hˡ⁺¹ = relu(hˡ W_lᵀ + b_l)     every grid point of the batch at once
//   s_m = Σ_{i∈m} h_i^L  (sum)   or  mean_{i∈m} h_i^L (mean)
//   Ê_m = W_p s_m + b_p
//
// The engine runs the whole batch through it; the chunked large-molecule path runs the
// same functions over chunks of grid points.

extension Readout {
    /// The factor the readout applies to the sum over a molecule's N_f points: 1 for the
    /// sum, 1/N_f for the mean.
    @inline(__always)
    package func factor(points: Int) -> Float {
        self == .mean ? 1 / Float(max(points, 1)) : 1
    }
}

/// The energy functional's stages, forward and backward (docs/model.md §6), over
/// caller-owned row-major buffers; its members are package-internal and used by the engine
/// and the chunked large-molecule path.
package enum EnergyFunctional {
    /// Whether the first layer should go through the basis (§12) for a molecule.
    /// `Engine.Policy.automatic` folds where that is cheaper; the result is exact either way.
    package static func foldsFirstLayer(_ policy: Engine.Policy, _ g: MoleculeGeometry, hyper: Hyperparameters) -> Bool {
        guard hyper.layerFunctional >= 1 else { return false }
        switch policy {
        case .always: return true
        case .never: return false
        case .automatic:
            return FirstLayerThroughBasis.pays(fieldCount: g.fieldCount, orbitalCount: g.orbitalCount, dim: hyper.dim)
        }
    }

    // MARK: Forward

    /// z⁰ = ψ W₀ᵀ for `rows` rows of ψ (row stride dim): before bias and ReLU.
    @inline(__always)
    package static func firstLayer(psi: UnsafePointer<Float>, rows: Int, dim: Int, w0: UnsafePointer<Float>,
                                   z0: UnsafeMutablePointer<Float>, compute: any ComputeBackend) {
        compute.gemm(.none, .transpose, m: rows, n: dim, k: dim, a: psi, lda: dim, b: w0, ldb: dim, c: z0, ldc: dim)
    }

    /// h¹ = relu(z⁰ + b₀) in place over `rows` rows.
    @inline(__always)
    package static func activateFirstLayer(_ z0: UnsafeMutablePointer<Float>, rows: Int, dim: Int,
                                           bias: UnsafePointer<Float>) {
        DenseStack.biasReLU(z0, rows: rows, width: dim, bias: bias)
    }

    /// Layers 1…L−1: from h¹ (`h[0]`) fills h[1…L−1], i.e. hˡ⁺¹ for each layer.
    package static func upperLayers(p: UnsafePointer<Float>, offsets o: ParameterOffsets, rows: Int, dim: Int,
                                    h: [UnsafeMutablePointer<Float>], compute: any ComputeBackend) {
        DenseStack.forward(rows: rows, width: dim, weights: o.functionalWeight.dropFirst().map { p + $0 },
                           biases: o.functionalBias.dropFirst().map { p + $0 }, activations: h, compute: compute)
    }

    /// The whole stack from ψ: `h[0]` holds ψ (rows × dim); fills h[1…L] (consecutive
    /// entries must differ; the chunked path alternates two buffers). Returns h[L]. With the
    /// potential input (§19), `potentialInput` is its ξ (rows × K).
    @discardableResult
    package static func layers(p: UnsafePointer<Float>, offsets o: ParameterOffsets, rows: Int, dim: Int,
                               h: [UnsafeMutablePointer<Float>], compute: any ComputeBackend,
                               potentialInput: (xi: UnsafePointer<Float>, count: Int)? = nil) -> UnsafeMutablePointer<Float> {
        let L = o.functionalWeight.count
        guard L >= 1 else { return h[0] }
        firstLayer(psi: h[0], rows: rows, dim: dim, w0: p + o.functionalWeight[0], z0: h[1], compute: compute)
        if let (xi, K) = potentialInput, let wv = o.potentialInput {
            compute.gemm(.none, .transpose, m: rows, n: dim, k: K, a: xi, lda: K, b: p + wv, ldb: K, beta: 1, c: h[1], ldc: dim)
        }
        activateFirstLayer(h[1], rows: rows, dim: dim, bias: p + o.functionalBias[0])
        upperLayers(p: p, offsets: o, rows: rows, dim: dim, h: Array(h[1...]), compute: compute)
        return h[L]
    }

    /// s = Σ over `rows` rows of `top` (dim values), summed in row order.
    @inline(__always)
    package static func sumRows(_ top: UnsafePointer<Float>, rows: Int, dim: Int, into s: UnsafeMutablePointer<Float>) {
        s.update(repeating: 0, count: dim)
        for i in 0..<rows {
            let r = top + i * dim
            for j in 0..<dim { s[j] += r[j] }
        }
    }

    /// The readout s_m (B × dim) of every molecule of a batch from the top layer.
    package static func readout(top: UnsafePointer<Float>, rowStart: [Int], rowCount: [Int], dim: Int,
                                operation: Readout, s: UnsafeMutablePointer<Float>) {
        for m in 0..<rowStart.count {
            let sm = s + m * dim
            sumRows(top + rowStart[m] * dim, rows: rowCount[m], dim: dim, into: sm)
            let f = operation.factor(points: rowCount[m])
            if f != 1 { for j in 0..<dim { sm[j] *= f } }
        }
    }

    /// Ê = s W_pᵀ + b_p (B × P).
    package static func property(s: UnsafePointer<Float>, molecules B: Int, p: UnsafePointer<Float>,
                                 offsets o: ParameterOffsets, dim: Int, outputs P: Int,
                                 out: UnsafeMutablePointer<Float>, compute: any ComputeBackend) {
        compute.gemm(.none, .transpose, m: B, n: P, k: dim, a: s, lda: dim, b: p + o.propertyWeight, ldb: dim,
                     c: out, ldc: P)
        for m in 0..<B { for q in 0..<P { out[m * P + q] += p[o.propertyBias + q] } }
    }

    /// Ê_m += offset_m: the per-molecule constant of an element baseline (no gradient).
    package static func addOutputOffsets(_ batch: [MoleculeGeometry], outputs P: Int, out: UnsafeMutablePointer<Float>) {
        for (m, g) in batch.enumerated() where !g.outputOffset.isEmpty {
            for q in 0..<P { out[m * P + q] += g.outputOffset[q] }
        }
    }

    // MARK: Backward

    /// From dÊ (B × P): adds the gradients of W_p and b_p and writes ds (B × dim).
    package static func propertyBackward(dOut: UnsafePointer<Float>, s: UnsafePointer<Float>, molecules B: Int,
                                         p: UnsafePointer<Float>, offsets o: ParameterOffsets, dim: Int, outputs P: Int,
                                         grad: UnsafeMutablePointer<Float>, ds: UnsafeMutablePointer<Float>,
                                         compute: any ComputeBackend) {
        compute.gemm(.transpose, .none, m: P, n: dim, k: B, a: dOut, lda: P, b: s, ldb: dim,
                     beta: 1, c: grad + o.propertyWeight, ldc: dim)
        for m in 0..<B { for q in 0..<P { grad[o.propertyBias + q] += dOut[m * P + q] } }
        compute.gemm(.none, .none, m: B, n: dim, k: P, a: dOut, lda: P, b: p + o.propertyWeight, ldb: dim,
                     c: ds, ldc: dim)
    }

    /// The readout's backward: every row of molecule m receives ds_m (× 1/N_f for the mean).
    package static func readoutBackward(ds: UnsafePointer<Float>, rowStart: [Int], rowCount: [Int], dim: Int,
                                        operation: Readout, dTop: UnsafeMutablePointer<Float>) {
        for m in 0..<rowStart.count {
            let dsm = ds + m * dim
            let f = operation.factor(points: rowCount[m])
            for i in rowStart[m]..<(rowStart[m] + rowCount[m]) {
                let r = dTop + i * dim
                for j in 0..<dim { r[j] = dsm[j] * f }
            }
        }
    }

    /// Layers L−1…1: from d(h^L) in `dTop` (overwritten), adds their gradients and leaves
    /// d(h¹) in `dH1`. `h` is h[1…L]; `dScratch` is rows × dim.
    package static func upperLayersBackward(p: UnsafePointer<Float>, offsets o: ParameterOffsets, rows: Int, dim: Int,
                                            h: [UnsafeMutablePointer<Float>], grad: UnsafeMutablePointer<Float>,
                                            dTop: UnsafeMutablePointer<Float>, dScratch: UnsafeMutablePointer<Float>,
                                            dH1: UnsafeMutablePointer<Float>, compute: any ComputeBackend,
                                            frozen: Bool = false) {
        DenseStack.backward(rows: rows, width: dim, weights: o.functionalWeight.dropFirst().map { UnsafePointer(p + $0) },
                            activations: h.map { UnsafePointer($0) },
                            weightGrads: frozen ? nil : o.functionalWeight.dropFirst().map { grad + $0 },
                            biasGrads: frozen ? nil : o.functionalBias.dropFirst().map { grad + $0 },
                            dTop: dTop, dScratch: dScratch, dInput: dH1, compute: compute)
    }

    /// h¹ = relu(z⁰ + b₀): turns d(h¹) into dz⁰ in place (ReLU mask) and adds b₀'s gradient
    /// (none when `gradBias` is nil: a frozen layer).
    package static func activateFirstLayerBackward(_ dz: UnsafeMutablePointer<Float>, h1: UnsafePointer<Float>,
                                                   rows: Int, dim: Int, gradBias: UnsafeMutablePointer<Float>?) {
        if let gradBias { DenseStack.maskReLUAndSumRows(dz, activations: h1, rows: rows, width: dim, into: gradBias) }
        else { DenseStack.maskReLU(dz, activations: h1, rows: rows, width: dim) }
    }

    // MARK: The potential input (docs/model.md §19, an option)

    /// The largest u = ln(1 + v) the Gaussians of the potential input span (v = −V_i; a grid
    /// point 0.15 Å from a fluorine nucleus has v ≈ 9, u ≈ 2.3).
    package static let potentialInputSpan: Float = 3.5

    /// ξ_iκ = exp(−γ (ln(1 − V_i) − μ_κ)²), μ_κ = κ·3.5/(K−1), γ = 1/(2 (3.5/(K−1))²), for
    /// `rows` values of V (≤ 0): rows × K into `xi`.
    package static func potentialFeatures(_ v: UnsafePointer<Float>, rows: Int, count K: Int,
                                          into xi: UnsafeMutablePointer<Float>) {
        let spacing = potentialInputSpan / Float(K - 1), gamma = 0.5 / (spacing * spacing)
        for i in 0..<rows {
            let u = log1pf(max(-v[i], 0)), r = xi + i * K
            for k in 0..<K { let t = u - Float(k) * spacing; r[k] = -gamma * t * t }
            VectorMath.expInPlace(r, count: K)
        }
    }

    /// z⁰ += ξ W_vᵀ for one molecule's rows (before bias and ReLU): the external potential at
    /// each grid point as an input of the first layer. `xi` is rows × K scratch.
    package static func addPotentialInput(_ g: MoleculeGeometry, wv: UnsafePointer<Float>, count K: Int, dim: Int,
                                          z0: UnsafeMutablePointer<Float>, compute: any ComputeBackend,
                                          scratch: ScratchArena) {
        precondition(g.potential.count == g.fieldCount, "geometry of '\(g.id)' was built without the potential")
        let xi = scratch.floats(g.fieldCount * K)
        g.potential.withUnsafeBufferPointer { potentialFeatures($0.baseAddress!, rows: g.fieldCount, count: K, into: xi) }
        compute.gemm(.none, .transpose, m: g.fieldCount, n: dim, k: K, a: xi, lda: K, b: wv, ldb: K, beta: 1, c: z0, ldc: dim)
    }

    /// From dz⁰ of one molecule's rows: dW_v += dz⁰ᵀ ξ (ξ recomputed in `scratch`).
    package static func potentialInputBackward(_ g: MoleculeGeometry, dZ0: UnsafePointer<Float>, count K: Int, dim: Int,
                                               gradWv: UnsafeMutablePointer<Float>, compute: any ComputeBackend,
                                               scratch: ScratchArena) {
        let xi = scratch.floats(g.fieldCount * K)
        g.potential.withUnsafeBufferPointer { potentialFeatures($0.baseAddress!, rows: g.fieldCount, count: K, into: xi) }
        compute.gemm(.transpose, .none, m: dim, n: K, k: g.fieldCount, a: dZ0, lda: dim, b: xi, ldb: K,
                     beta: 1, c: gradWv, ldc: K)
    }

    /// z⁰ = ψ W₀ᵀ for one molecule's rows: adds dW₀ += dz⁰ᵀ ψ and writes dψ = dz⁰ W₀; either
    /// is skipped when its destination is nil (frozen functional, frozen orbitals).
    package static func firstLayerBackward(dZ0: UnsafePointer<Float>, psi: UnsafePointer<Float>, rows: Int, dim: Int,
                                           w0: UnsafePointer<Float>, gradW0: UnsafeMutablePointer<Float>?,
                                           dPsi: UnsafeMutablePointer<Float>?, compute: any ComputeBackend) {
        if let gradW0 {
            compute.gemm(.transpose, .none, m: dim, n: dim, k: rows, a: dZ0, lda: dim, b: psi, ldb: dim,
                         beta: 1, c: gradW0, ldc: dim)
        }
        if let dPsi {
            compute.gemm(.none, .none, m: rows, n: dim, k: dim, a: dZ0, lda: dim, b: w0, ldb: dim, c: dPsi, ldc: dim)
        }
    }
}

/// The energy functional's first layer computed through the basis (exact, docs/model.md §12):
///
///   ψ W₀ᵀ = φ̂ (Ĉ D W₀ᵀ) = φ̂ A,   D = diag(sqrt(N_e/dim) / ‖Ψ_:j‖),   ‖Ψ_:j‖² = Ĉ_:jᵀ G Ĉ_:j,  G = φ̂ᵀφ̂
///
/// so ψ itself is never formed: N_f·N_o² + N_o·dim² + N_f·N_o·dim multiply-adds instead
/// of N_f·N_o·dim + N_f·dim², a saving whenever N_o < dim (QM9: N_o ≈ 100, dim 250).
/// Backward, from dZ₀ = d(ψW₀ᵀ):  dA = φ̂ᵀdZ₀,  dφ̂ = dZ₀Aᵀ + 2φ̂ dG,  dW₀ = dAᵀB (B = ĈD),
/// dB = dA W₀,  dĈ = dB D + (t ⊙ GĈ),  dG = Ĉ diag(t/2) Ĉᵀ,  t_j = −(Σ_k dB_kj Ĉ_kj)·s/n_j³.
package enum FirstLayerThroughBasis {
    /// Whether folding is cheaper for a molecule of N_f points and N_o functions:
    /// N_f·N_o² + N_o·dim² + N_f·N_o·dim < N_f·N_o·dim + N_f·dim² multiply-adds (§12).
    package static func pays(fieldCount nf: Int, orbitalCount no: Int, dim: Int) -> Bool {
        let fold = Double(nf) * Double(no * no) + Double(no) * Double(dim * dim) + Double(nf) * Double(no * dim)
        let plain = Double(nf) * Double(no * dim) + Double(nf) * Double(dim * dim)
        return fold < plain
    }

    /// Values the backward pass needs, kept by the forward pass in the engine's buffers.
    package struct Saved {
        package var gram: UnsafeMutablePointer<Float>  // N_o × N_o: G = φ̂ᵀφ̂
        package var gc: UnsafeMutablePointer<Float>    // N_o × dim: G Ĉ
        package var b: UnsafeMutablePointer<Float>     // N_o × dim: B = Ĉ D
        package var a: UnsafeMutablePointer<Float>     // N_o × dim: A = B W₀ᵀ
    }

    /// Floats of `Saved` one molecule needs: N_o² for G, and N_o·dim for each of GĈ, B, A.
    package static func savedCounts(orbitals no: Int, dim: Int) -> (gram: Int, perMatrix: Int) { (no * no, no * dim) }

    /// After `LCAO.basisForward` and `LCAO.coefficientForward`: fills ‖Ψ_:j‖ (lcao.psiNorm),
    /// the saved matrices, and z0 = φ̂ A (N_f × dim, before bias and ReLU).
    package static func forward(_ g: MoleculeGeometry, w0: UnsafePointer<Float>, dim: Int, lcao s: LCAO.Saved,
                                fold f: Saved, z0: UnsafeMutablePointer<Float>,
                                compute: any ComputeBackend, scratch: ScratchArena) {
        let nf = g.fieldCount, no = g.orbitalCount
        compute.gemm(.transpose, .none, m: no, n: no, k: nf, a: s.phiHat, lda: no, b: s.phiHat, ldb: no, c: f.gram, ldc: no)
        compute.gemm(.none, .none, m: no, n: dim, k: no, a: f.gram, lda: no, b: s.cHat, ldb: dim, c: f.gc, ldc: dim)
        let squares = scratch.doubles(dim), dcol = scratch.floats(dim)
        columnDots(s.cHat, f.gc, rows: no, cols: dim, ld: dim, into: squares)
        let scale = LCAO.orbitalScale(electrons: g.electronCount, dim: dim)
        for j in 0..<dim {
            s.psiNorm[j] = max(Float(max(squares[j], 0).squareRoot()), normalizationEpsilon)
            dcol[j] = scale / s.psiNorm[j]
        }
        for k in 0..<no {
            let br = f.b + k * dim, cr = s.cHat + k * dim
            for j in 0..<dim { br[j] = cr[j] * dcol[j] }
        }
        compute.gemm(.none, .transpose, m: no, n: dim, k: dim, a: f.b, lda: dim, b: w0, ldb: dim, c: f.a, ldc: dim)
        compute.gemm(.none, .none, m: nf, n: dim, k: no, a: s.phiHat, lda: no, b: f.a, ldb: dim, c: z0, ldc: dim)
    }

    /// From dZ₀ (N_f × dim, ReLU mask applied): adds dW₀ (unless `gradW0` is nil: a frozen
    /// functional) and returns dφ̂ (N_f × N_o) and dĈ (N_o × dim), in `scratch`, for
    /// `LCAO.basisBackward` and `LCAO.coefficientBackward`; with `orbitals` false (frozen
    /// orbitals) it stops after dW₀ and returns nil.
    @discardableResult
    package static func backward(_ g: MoleculeGeometry, w0: UnsafePointer<Float>, gradW0: UnsafeMutablePointer<Float>?,
                                 dim: Int, lcao s: LCAO.Saved, fold f: Saved, dZ0: UnsafePointer<Float>,
                                 compute: any ComputeBackend, scratch: ScratchArena, orbitals: Bool = true)
        -> (dPhiHat: UnsafeMutablePointer<Float>, dCHat: UnsafeMutablePointer<Float>)? {
        let nf = g.fieldCount, no = g.orbitalCount
        let dA = scratch.floats(no * dim)
        compute.gemm(.transpose, .none, m: no, n: dim, k: nf, a: s.phiHat, lda: no, b: dZ0, ldb: dim, c: dA, ldc: dim)
        if let gradW0 {
            compute.gemm(.transpose, .none, m: dim, n: dim, k: no, a: dA, lda: dim, b: f.b, ldb: dim, beta: 1, c: gradW0, ldc: dim)
        }
        guard orbitals else { return nil }
        let dB = scratch.floats(no * dim), dG = scratch.floats(no * no)
        let dPhiHat = scratch.floats(nf * no)
        compute.gemm(.none, .transpose, m: nf, n: no, k: dim, a: dZ0, lda: dim, b: f.a, ldb: dim, c: dPhiHat, ldc: no)
        compute.gemm(.none, .none, m: no, n: dim, k: dim, a: dA, lda: dim, b: w0, ldb: dim, c: dB, ldc: dim)
        // dD_j = Σ_k dB_kj Ĉ_kj;  t_j = dn_j / n_j with dn_j = −dD_j s / n_j².
        let dots = scratch.doubles(dim), dcol = scratch.floats(dim), t = scratch.floats(dim)
        columnDots(dB, s.cHat, rows: no, cols: dim, ld: dim, into: dots)
        let scale = LCAO.orbitalScale(electrons: g.electronCount, dim: dim)
        for j in 0..<dim {
            let n = s.psiNorm[j]
            dcol[j] = scale / n
            t[j] = n > normalizationEpsilon ? -Float(dots[j]) * scale / (n * n * n) : 0
        }
        // dĈ = dB ⊙ D + t ⊙ GĈ (in dB);  Ĉ diag(t/2) into dA for dG.
        for k in 0..<no {
            let dbr = dB + k * dim, gcr = f.gc + k * dim, cr = s.cHat + k * dim, ar = dA + k * dim
            for j in 0..<dim {
                dbr[j] = dbr[j] * dcol[j] + t[j] * gcr[j]
                ar[j] = cr[j] * (0.5 * t[j])
            }
        }
        compute.gemm(.none, .transpose, m: no, n: no, k: dim, a: dA, lda: dim, b: s.cHat, ldb: dim, c: dG, ldc: no)
        compute.gemm(.none, .none, m: nf, n: no, k: no, alpha: 2, a: s.phiHat, lda: no, b: dG, ldb: no,
                     beta: 1, c: dPhiHat, ldc: no)
        return (dPhiHat, dB)
    }
}
