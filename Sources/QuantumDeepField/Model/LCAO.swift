import Foundation

// LCAO (docs/model.md §5): atomic orbitals φ on the field grid, normalized basis φ̂,
// normalized coefficients Ĉ, molecular orbitals Ψ = φ̂Ĉ and the N_e-normalized ψ.
// Forward and backward for one molecule, side by side.
//
//   φ_ik  = d_ik^(q_k−1) · exp(−ζ_t(k) · d_ik²)          N_f × N_o
//   φ̂_:k  = φ_:k / max(‖φ_:k‖, ε)
//   Ĉ_:j  = C_:j / max(‖C_:j‖, ε),  C_k = coefficient[t(k)]   N_o × dim
//                                   (+ the orbital environment's term, §18, OrbitalEnvironment.swift)
//   Ψ     = φ̂ Ĉ                                          N_f × dim
//   ψ_:j  = sqrt(N_e/dim) · Ψ_:j / max(‖Ψ_:j‖, ε)
//
// The pieces (`basisValues`, `orbitalScale`, the column normalizations of Buffer.swift)
// are also what the chunked large-molecule path and the density field are built from.

/// The LCAO stage of docs/model.md §5, forward and backward, for one molecule at a time over
/// caller-owned row-major buffers; apart from `orbitalScale` its members are package-internal.
package enum LCAO {
    /// Per-molecule values the backward pass needs, kept by the forward pass in the
    /// engine's buffers (pointers valid for the engine's current batch).
    package struct Saved {
        package var phiHat: UnsafeMutablePointer<Float>   // N_f × N_o
        package var phiNorm: UnsafeMutablePointer<Float>  // N_o: max(‖φ_:k‖, ε)
        package var cHat: UnsafeMutablePointer<Float>     // N_o × dim
        package var cNorm: UnsafeMutablePointer<Float>    // dim: max(‖C_:j‖, ε)
        package var psiNorm: UnsafeMutablePointer<Float>  // dim: max(‖Ψ_:j‖, ε)

        package init(phiHat: UnsafeMutablePointer<Float>, phiNorm: UnsafeMutablePointer<Float>,
                     cHat: UnsafeMutablePointer<Float>, cNorm: UnsafeMutablePointer<Float>,
                     psiNorm: UnsafeMutablePointer<Float>) {
            self.phiHat = phiHat; self.phiNorm = phiNorm; self.cHat = cHat; self.cNorm = cNorm; self.psiNorm = psiNorm
        }
    }

    /// φ = d^(q−1) · exp(−ζ d²), one basis function at distance d.
    @inline(__always)
    package static func radial(_ d: Float, zeta: Float, q: Int) -> Float {
        let e = expf(-zeta * (d * d))
        return q == 1 ? e : (q == 2 ? d * e : powf(d, Float(q - 1)) * e)
    }

    /// s = sqrt(N_e/dim): every ψ column is normalized to this length, so Σ_ij ψ_ij² = N_e
    /// (docs/model.md §5).
    @inline(__always)
    package static func orbitalScale(electrons: Int, dim: Int) -> Float {
        (Float(electrons) / Float(dim)).squareRoot()
    }

    /// φ (unnormalized) for `rows` points from their distances to the atoms (rows × M,
    /// row-major): `phi` is rows × N_o. `zeta` is the ζ table (one per dictionary row).
    /// Each row's exponents −ζ_k d² go through the vectorized exp (VectorMath); the
    /// scalar `radial` is the plain definition it is tested against.
    @inline(__always)
    package static func basisValues(distances: UnsafePointer<Float>, atomCount M: Int, rows: Int,
                                    layout: BasisLayout, zeta: UnsafePointer<Float>,
                                    into phi: UnsafeMutablePointer<Float>) {
        let no = layout.count
        layout.atom.withUnsafeBufferPointer { atom in
        layout.type.withUnsafeBufferPointer { type in
        layout.q.withUnsafeBufferPointer { q in
        // −ζ_k per basis function, gathered once for all rows (on the stack).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: no) { minusZeta in
        // The functions with q ≠ 1 (p, d… shells), listed once for all rows (on the stack).
        withUnsafeTemporaryAllocation(of: Int.self, capacity: no) { radial in
            for k in 0..<no { minusZeta[k] = -zeta[Int(type[k])] }
            var nonS = 0
            for k in 0..<no where q[k] != 1 { radial[nonS] = k; nonS += 1 }
            for i in 0..<rows {
                let drow = distances + i * M
                let prow = phi + i * no
                for k in 0..<no {
                    let d = drow[Int(atom[k])]
                    prow[k] = minusZeta[k] * (d * d)
                }
                VectorMath.expInPlace(prow, count: no)
                for n in 0..<nonS {
                    let k = radial[n], d = drow[Int(atom[k])]
                    prow[k] *= q[k] == 2 ? d : powf(d, Float(q[k] - 1))
                }
            }
        }
        }
        }}}
    }

    /// Ĉ before normalization: the coefficient row of each basis function's type (N_o × dim).
    @inline(__always)
    package static func gatherCoefficients(layout: BasisLayout, coefficient: UnsafePointer<Float>, dim: Int,
                                           into c: UnsafeMutablePointer<Float>) {
        layout.type.withUnsafeBufferPointer { type in
            for k in 0..<layout.count { (c + k * dim).update(from: coefficient + Int(type[k]) * dim, count: dim) }
        }
    }

    /// φ̂ and its column norms.
    package static func basisForward(_ g: MoleculeGeometry, zeta: UnsafePointer<Float>, saved s: Saved,
                                     scratch: ScratchArena) {
        let nf = g.fieldCount, no = g.orbitalCount
        g.distances.withUnsafeBufferPointer { dist in
            basisValues(distances: dist.baseAddress!, atomCount: g.atomCount, rows: nf, layout: g.basis, zeta: zeta,
                        into: s.phiHat)
        }
        columnNorms(s.phiHat, rows: nf, cols: no, ld: no, into: s.phiNorm, sums: scratch.doubles(no))
        divideColumns(s.phiHat, rows: nf, cols: no, ld: no, by: s.phiNorm)
    }

    /// Ĉ (gathered coefficient rows plus the orbital environment's term where the model has
    /// one, §18; column-normalized) and its column norms.
    package static func coefficientForward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>,
                                           offsets o: ParameterOffsets, dim: Int, saved s: Saved,
                                           compute: any ComputeBackend, scratch: ScratchArena) {
        let no = g.orbitalCount
        gatherCoefficients(layout: g.basis, coefficient: p + o.coefficient, dim: dim, into: s.cHat)
        if let env = o.environment {
            g.atomDistances.withUnsafeBufferPointer { d in
                OrbitalEnvironment.addForward(layout: g.basis, atomCount: g.atomCount, atomDistances: d.baseAddress!,
                                              parameters: p, offsets: env, dim: dim, into: s.cHat, compute: compute,
                                              scratch: scratch)
            }
        }
        columnNorms(s.cHat, rows: no, cols: dim, ld: dim, into: s.cNorm, sums: scratch.doubles(dim))
        divideColumns(s.cHat, rows: no, cols: dim, ld: dim, by: s.cNorm)
    }

    /// Ψ = φ̂Ĉ and ψ_:j = sqrt(N_e/dim) Ψ_:j / max(‖Ψ_:j‖, ε), after basisForward and
    /// coefficientForward. ψ is N_f × dim with row stride dim.
    package static func productForward(_ g: MoleculeGeometry, dim: Int, saved s: Saved, psi: UnsafeMutablePointer<Float>,
                                       compute: any ComputeBackend, scratch: ScratchArena) {
        let nf = g.fieldCount, no = g.orbitalCount
        compute.gemm(.none, .none, m: nf, n: dim, k: no, a: s.phiHat, lda: no, b: s.cHat, ldb: dim, c: psi, ldc: dim)
        columnNorms(psi, rows: nf, cols: dim, ld: dim, into: s.psiNorm, sums: scratch.doubles(dim))
        let scale = orbitalScale(electrons: g.electronCount, dim: dim)
        let factor = scratch.floats(dim)
        for j in 0..<dim { factor[j] = scale / s.psiNorm[j] }
        scaleColumns(psi, rows: nf, cols: dim, ld: dim, by: factor)
    }

    /// The whole LCAO forward for one molecule: ψ (N_f × dim, row stride dim).
    package static func forward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>, offsets o: ParameterOffsets,
                                dim: Int, saved s: Saved, psi: UnsafeMutablePointer<Float>,
                                compute: any ComputeBackend, scratch: ScratchArena) {
        basisForward(g, zeta: p + o.zeta, saved: s, scratch: scratch)
        coefficientForward(g, parameters: p, offsets: o, dim: dim, saved: s, compute: compute, scratch: scratch)
        productForward(g, dim: dim, saved: s, psi: psi, compute: compute, scratch: scratch)
    }

    /// Backward for one molecule from dψ (N_f × dim; overwritten): adds the gradients of
    /// ζ and of the coefficient table into `grad` (parameter layout).
    ///
    /// ψ = s·u, u = Ψ/n:  dΨ_:j = (s·dψ_:j − u_:j (ψ_:jᵀ dψ_:j)) / n_j;  then Ψ = φ̂Ĉ gives
    /// dφ̂ = dΨ Ĉᵀ and dĈ = φ̂ᵀ dΨ.
    package static func backward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>, offsets o: ParameterOffsets,
                                 dim: Int, saved s: Saved,
                                 psi: UnsafePointer<Float>, dPsi: UnsafeMutablePointer<Float>,
                                 grad: UnsafeMutablePointer<Float>, compute: any ComputeBackend, scratch: ScratchArena) {
        let nf = g.fieldCount, no = g.orbitalCount
        let scale = orbitalScale(electrons: g.electronCount, dim: dim)
        let dots = scratch.doubles(dim), a = scratch.floats(dim), b = scratch.floats(dim)
        columnDots(psi, dPsi, rows: nf, cols: dim, ld: dim, into: dots)
        for j in 0..<dim {
            a[j] = scale / s.psiNorm[j]
            b[j] = s.psiNorm[j] > normalizationEpsilon ? Float(dots[j]) / (scale * s.psiNorm[j]) : 0
        }
        for i in 0..<nf {
            let dr = dPsi + i * dim, pr = psi + i * dim
            for j in 0..<dim { dr[j] = a[j] * dr[j] - b[j] * pr[j] }
        }
        let dPhiHat = scratch.floats(nf * no), dCHat = scratch.floats(no * dim)
        compute.gemm(.none, .transpose, m: nf, n: no, k: dim, a: dPsi, lda: dim, b: s.cHat, ldb: dim, c: dPhiHat, ldc: no)
        compute.gemm(.transpose, .none, m: no, n: dim, k: nf, a: s.phiHat, lda: no, b: dPsi, ldb: dim, c: dCHat, ldc: dim)
        coefficientBackward(g, parameters: p, offsets: o, dim: dim, saved: s, dCHat: dCHat, grad: grad,
                            compute: compute, scratch: scratch)
        basisBackward(g, offsets: o, saved: s, dPhiHat: dPhiHat, grad: grad, scratch: scratch)
    }

    /// The backward of x̂_:j = x_:j / max(‖x_:j‖, ε) is dx_:j = (dx̂_:j − x̂_:j b_j) / n_j with
    /// b_j = x̂_:jᵀ dx̂_:j where the norm exceeded ε (0 where ε was used): returns b (cols
    /// Floats from `scratch`) for a row-major rows × cols x̂ and dx̂.
    @inline(__always)
    package static func normalizationProjection(_ hat: UnsafePointer<Float>, _ dHat: UnsafePointer<Float>, rows: Int,
                                                cols: Int, norms: UnsafePointer<Float>,
                                                scratch: ScratchArena) -> UnsafeMutablePointer<Float> {
        let dots = scratch.doubles(cols), b = scratch.floats(cols)
        columnDots(hat, dHat, rows: rows, cols: cols, ld: cols, into: dots)
        for j in 0..<cols { b[j] = norms[j] > normalizationEpsilon ? Float(dots[j]) : 0 }
        return b
    }

    /// Ĉ = C / max(‖C‖, ε), column-wise: from dĈ (N_o × dim), adds into the coefficient
    /// rows' gradient:  dC_:j = (dĈ_:j − Ĉ_:j (Ĉ_:jᵀ dĈ_:j)) / n_j; with the orbital
    /// environment (§18), dC also goes through it into its tensors.
    package static func coefficientBackward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>,
                                            offsets o: ParameterOffsets, dim: Int, saved s: Saved,
                                            dCHat: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                            compute: any ComputeBackend, scratch: ScratchArena) {
        let no = g.orbitalCount
        let b = normalizationProjection(s.cHat, dCHat, rows: no, cols: dim, norms: s.cNorm, scratch: scratch)
        let gc = grad + o.coefficient
        let dC = o.environment == nil ? nil : scratch.floats(no * dim)
        g.orbitalType.withUnsafeBufferPointer { type in
            for k in 0..<no {
                let dr = dCHat + k * dim, cr = s.cHat + k * dim
                let target = gc + Int(type[k]) * dim
                if let dC {
                    let out = dC + k * dim
                    for j in 0..<dim { let v = (dr[j] - cr[j] * b[j]) / s.cNorm[j]; out[j] = v; target[j] += v }
                } else {
                    for j in 0..<dim { target[j] += (dr[j] - cr[j] * b[j]) / s.cNorm[j] }
                }
            }
        }
        if let env = o.environment, let dC {
            g.atomDistances.withUnsafeBufferPointer { d in
                OrbitalEnvironment.backward(layout: g.basis, atomCount: g.atomCount, atomDistances: d.baseAddress!,
                                            parameters: p, offsets: env, dim: dim, dC: dC, grad: grad,
                                            compute: compute, scratch: scratch)
            }
        }
    }

    /// φ̂ = φ / max(‖φ‖, ε), column-wise, and φ = d^(q−1) exp(−ζ d²) (∂φ/∂ζ = −d² φ):
    /// from dφ̂ (N_f × N_o), adds into the ζ gradient.
    package static func basisBackward(_ g: MoleculeGeometry, offsets o: ParameterOffsets, saved s: Saved,
                                      dPhiHat: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                      scratch: ScratchArena) {
        let nf = g.fieldCount, no = g.orbitalCount
        let b = normalizationProjection(s.phiHat, dPhiHat, rows: nf, cols: no, norms: s.phiNorm, scratch: scratch)
        let gz = grad + o.zeta
        // Accumulate per basis function in Double, then add to its type's ζ.
        let acc = scratch.doubles(no)
        acc.update(repeating: 0, count: no)
        g.distances.withUnsafeBufferPointer { dist in
        g.orbitalAtom.withUnsafeBufferPointer { atom in
            let M = g.atomCount
            for i in 0..<nf {
                let drow = dist.baseAddress! + i * M
                let ph = s.phiHat + i * no, dph = dPhiHat + i * no
                for k in 0..<no {
                    let dphi = (dph[k] - ph[k] * b[k]) / s.phiNorm[k]
                    let d = drow[Int(atom[k])]
                    let phi = ph[k] * s.phiNorm[k]
                    acc[k] += Double(dphi * (-(d * d)) * phi)
                }
            }
        }}
        g.orbitalType.withUnsafeBufferPointer { type in
            for k in 0..<no { gz[Int(type[k])] += Float(acc[k]) }
        }
    }
}
