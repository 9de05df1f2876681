import Foundation

// LCAO (spec section 5): atomic orbitals φ on the field grid, normalized basis φ̂,
// normalized coefficients Ĉ, molecular orbitals Ψ = φ̂Ĉ and the N_e-normalized ψ.
// Forward and backward for one molecule, side by side.
//
//   φ_ik  = d_ik^(q_k−1) · exp(−ζ_t(k) · d_ik²)          N_f × N_o
//   φ̂_:k  = φ_:k / max(‖φ_:k‖, ε)
//   Ĉ_:j  = C_:j / max(‖C_:j‖, ε),  C_k = coefficient[t(k)]   N_o × dim
//   Ψ     = φ̂ Ĉ                                          N_f × dim
//   ψ_:j  = sqrt(N_e/dim) · Ψ_:j / max(‖Ψ_:j‖, ε)

/// Per-molecule values the backward pass needs, kept by the forward pass.
public struct LCAOSaved {
    package init(phiHat: UnsafeMutablePointer<Float>, phiNorm: UnsafeMutablePointer<Float>, cHat: UnsafeMutablePointer<Float>,
                 cNorm: UnsafeMutablePointer<Float>, psiNorm: UnsafeMutablePointer<Float>) {
        self.phiHat = phiHat; self.phiNorm = phiNorm; self.cHat = cHat; self.cNorm = cNorm; self.psiNorm = psiNorm
    }
    public var phiHat: UnsafeMutablePointer<Float>   // N_f × N_o
    public var phiNorm: UnsafeMutablePointer<Float>  // N_o: max(‖φ_:k‖, ε)
    public var cHat: UnsafeMutablePointer<Float>     // N_o × dim
    public var cNorm: UnsafeMutablePointer<Float>    // dim: max(‖C_:j‖, ε)
    public var psiNorm: UnsafeMutablePointer<Float>  // dim: max(‖Ψ_:j‖, ε)
}

public enum LCAO {
    /// φ = d^(q−1) · exp(−ζ d²), one basis function at distance d.
    @inline(__always)
    package static func radial(_ d: Float, zeta: Float, q: Int) -> Float {
        let e = expf(-zeta * (d * d))
        return q == 1 ? e : (q == 2 ? d * e : powf(d, Float(q - 1)) * e)
    }

    /// φ̂ and its column norms.
    static func basisForward(_ g: MoleculeGeometry, zeta: UnsafePointer<Float>,
                             phiHat: UnsafeMutablePointer<Float>, phiNorm: UnsafeMutablePointer<Float>,
                             scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount, M = g.atomCount
        g.distances.withUnsafeBufferPointer { dist in
        g.orbitalAtom.withUnsafeBufferPointer { atom in
        g.orbitalType.withUnsafeBufferPointer { type in
        g.orbitalQ.withUnsafeBufferPointer { q in
            for i in 0..<nf {
                let drow = dist.baseAddress! + i * M
                let prow = phiHat + i * no
                for k in 0..<no {
                    prow[k] = radial(drow[Int(atom[k])], zeta: zeta[Int(type[k])], q: Int(q[k]))
                }
            }
        }}}}
        columnNorms(phiHat, rows: nf, cols: no, ld: no, into: phiNorm, scratch: scratch)
        for k in 0..<no { phiNorm[k] = max(phiNorm[k], normalizationEpsilon) }
        for i in 0..<nf {
            let prow = phiHat + i * no
            for k in 0..<no { prow[k] /= phiNorm[k] }
        }
    }

    /// Ĉ (gathered coefficient rows, column-normalized) and its column norms.
    static func coefficientForward(_ g: MoleculeGeometry, coefficient: UnsafePointer<Float>, dim: Int,
                                   cHat: UnsafeMutablePointer<Float>, cNorm: UnsafeMutablePointer<Float>,
                                   scratch: UnsafeMutablePointer<Double>) {
        let no = g.orbitalCount
        g.orbitalType.withUnsafeBufferPointer { type in
            for k in 0..<no { (cHat + k * dim).update(from: coefficient + Int(type[k]) * dim, count: dim) }
        }
        columnNorms(cHat, rows: no, cols: dim, ld: dim, into: cNorm, scratch: scratch)
        for j in 0..<dim { cNorm[j] = max(cNorm[j], normalizationEpsilon) }
        for k in 0..<no {
            let row = cHat + k * dim
            for j in 0..<dim { row[j] /= cNorm[j] }
        }
    }

    /// The whole LCAO forward for one molecule: writes ψ (N_f × dim, leading dimension dim).
    public static func forward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>, offsets o: ParameterOffsets,
                               dim: Int, saved s: LCAOSaved, psi: UnsafeMutablePointer<Float>,
                               scratch: UnsafeMutablePointer<Double>) {
        basisForward(g, zeta: p + o.zeta, phiHat: s.phiHat, phiNorm: s.phiNorm, scratch: scratch)
        coefficientForward(g, coefficient: p + o.coefficient, dim: dim, cHat: s.cHat, cNorm: s.cNorm, scratch: scratch)
        productForward(g, dim: dim, saved: s, psi: psi, scratch: scratch)
    }

    /// Ψ = φ̂Ĉ and ψ_:j = sqrt(N_e/dim) Ψ_:j / max(‖Ψ_:j‖, ε), after basisForward and coefficientForward.
    static func productForward(_ g: MoleculeGeometry, dim: Int, saved s: LCAOSaved, psi: UnsafeMutablePointer<Float>,
                               scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount
        BLAS.shared.sgemm(.none, .none, m: nf, n: dim, k: no, a: s.phiHat, lda: no, b: s.cHat, ldb: dim,
                          c: psi, ldc: dim)
        columnNorms(psi, rows: nf, cols: dim, ld: dim, into: s.psiNorm, scratch: scratch)
        let scale = (Float(g.electronCount) / Float(dim)).squareRoot()
        for j in 0..<dim { s.psiNorm[j] = max(s.psiNorm[j], normalizationEpsilon) }
        // Reuse the scratch's tail as Float factors: scale / ‖Ψ_:j‖.
        let factor = UnsafeMutableRawPointer(scratch + max(dim, no)).assumingMemoryBound(to: Float.self)
        for j in 0..<dim { factor[j] = scale / s.psiNorm[j] }
        for i in 0..<nf {
            let row = psi + i * dim
            for j in 0..<dim { row[j] *= factor[j] }
        }
    }

    /// Doubles of scratch space `forward` and `backward` need for a molecule.
    public static func scratchCount(orbitals no: Int, dim: Int) -> Int { 2 * max(dim, no) + 8 }

    /// Backward for one molecule. Given dψ (N_f × dim; overwritten as scratch), adds
    /// the gradients of ζ and of the coefficient table into `grad` (same layout as the
    /// parameters). `dPhiHat` needs N_f·N_o values and `dCHat` N_o·dim.
    public static func backward(_ g: MoleculeGeometry, parameters p: UnsafePointer<Float>, offsets o: ParameterOffsets,
                                dim: Int, saved s: LCAOSaved, psi: UnsafePointer<Float>,
                                dPsi: UnsafeMutablePointer<Float>, dPhiHat: UnsafeMutablePointer<Float>,
                                dCHat: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount
        let scale = (Float(g.electronCount) / Float(dim)).squareRoot()
        // ψ = scale·u, u = Ψ/n:  dΨ_:j = (scale·dψ_:j − u_:j (ψ_:jᵀ dψ_:j)) / n_j   (u = ψ/scale)
        columnDots(psi, dPsi, rows: nf, cols: dim, ld: dim, into: scratch)
        let w = max(dim, no)
        let a = UnsafeMutableRawPointer(scratch + w).assumingMemoryBound(to: Float.self)
        let b = a + w
        for j in 0..<dim {
            a[j] = scale / s.psiNorm[j]
            b[j] = s.psiNorm[j] > normalizationEpsilon ? Float(scratch[j]) / (scale * s.psiNorm[j]) : 0
        }
        for i in 0..<nf {
            let dr = dPsi + i * dim, pr = psi + i * dim
            for j in 0..<dim { dr[j] = a[j] * dr[j] - b[j] * pr[j] }
        }
        // Ψ = φ̂ Ĉ
        BLAS.shared.sgemm(.none, .transpose, m: nf, n: no, k: dim, a: dPsi, lda: dim, b: s.cHat, ldb: dim,
                          c: dPhiHat, ldc: no)
        BLAS.shared.sgemm(.transpose, .none, m: no, n: dim, k: nf, a: s.phiHat, lda: no, b: dPsi, ldb: dim,
                          c: dCHat, ldc: dim)
        coefficientBackward(g, offsets: o, dim: dim, saved: s, dCHat: dCHat, grad: grad, scratch: scratch)
        basisBackward(g, offsets: o, dim: dim, saved: s, dPhiHat: dPhiHat, grad: grad, scratch: scratch)
    }

    /// Ĉ = C / max(‖C‖, ε), column-wise: from dĈ, adds into the coefficient rows' gradient.
    public static func coefficientBackward(_ g: MoleculeGeometry, offsets o: ParameterOffsets, dim: Int, saved s: LCAOSaved,
                                           dCHat: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                           scratch: UnsafeMutablePointer<Double>) {
        let no = g.orbitalCount
        let w = max(dim, no)
        let b = UnsafeMutableRawPointer(scratch + w).assumingMemoryBound(to: Float.self) + w
        columnDots(s.cHat, dCHat, rows: no, cols: dim, ld: dim, into: scratch)
        for j in 0..<dim { b[j] = s.cNorm[j] > normalizationEpsilon ? Float(scratch[j]) : 0 }
        let gc = grad + o.coefficient
        g.orbitalType.withUnsafeBufferPointer { type in
            for k in 0..<no {
                let dr = dCHat + k * dim, cr = s.cHat + k * dim
                let target = gc + Int(type[k]) * dim
                for j in 0..<dim { target[j] += (dr[j] - cr[j] * b[j]) / s.cNorm[j] }
            }
        }
    }

    /// φ̂ = φ / max(‖φ‖, ε), column-wise, and φ = d^(q−1) exp(−ζ d²) (∂φ/∂ζ = −d² φ):
    /// from dφ̂, adds into the ζ gradient.
    public static func basisBackward(_ g: MoleculeGeometry, offsets o: ParameterOffsets, dim: Int, saved s: LCAOSaved,
                                     dPhiHat: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                     scratch: UnsafeMutablePointer<Double>) {
        let nf = g.fieldCount, no = g.orbitalCount
        let w = max(dim, no)
        let b = UnsafeMutableRawPointer(scratch + w).assumingMemoryBound(to: Float.self) + w
        columnDots(s.phiHat, dPhiHat, rows: nf, cols: no, ld: no, into: scratch)
        for k in 0..<no { b[k] = s.phiNorm[k] > normalizationEpsilon ? Float(scratch[k]) : 0 }
        let gz = grad + o.zeta
        // Accumulate per basis function in Double, then add to its type's ζ.
        let acc = scratch
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
