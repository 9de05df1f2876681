import Foundation
import QuantumDeepField
import QDFFormats
import Dispatch

// Density anywhere in space (spec section 11).
//
// φ is analytic, so ψ and ρ can be evaluated at any point r, not only on the training
// grid. The normalizations are those of the molecule's own field grid, computed once by
// the LCAO forward pass (LCAO.swift):
//
//   ψ_j(r) = Σ_k φ_k(r) / ‖φ_:k‖ · Ĉ_kj · sqrt(N_e/dim) / ‖Ψ_:j‖  =  Σ_k b_k(r) · W_kj
//   ρ(r)   = Σ_j ψ_j(r)²
//
// with b_k(r) = φ_k(r)/‖φ_:k‖ (P × N_o for a block of P points) and W = Ĉ scaled by
// column (N_o × dim). ρ = Σ_j ψ_j² = bᵀ G b with G = W Wᵀ (N_o × N_o, formed once in
// Double), so a block of ρ is one P × N_o × N_o GEMM (N_o ≪ dim: 108 vs 250 for benzene)
// and chosen orbitals are one P × N_o × n_sel GEMM. At the field points ρ(r) equals the
// engine's ρ_i up to Float rounding (basis values are computed exactly as the engine does). ρ is in the model's own units: a per-grid-point
// quantity that sums to N_e over the field grid. `DensityCube` turns it into e/bohr³.

public final class DensityField: @unchecked Sendable {
    public let model: QDFModel
    public let molecule: Molecule
    public let geometry: MoleculeGeometry
    /// Molecular orbitals (the model's dim).
    public let orbitalCount: Int
    /// N_o basis functions.
    public let basisCount: Int
    public var electronCount: Int { molecule.electronCount }

    // Per basis function: its atom, q, ζ and 1/‖φ_:k‖ (field grid).
    let atom: [Int32]
    let q: [Int32]
    let zeta: [Float]
    let basisNorm: [Float]
    /// W = Ĉ_kj · sqrt(N_e/dim)/‖Ψ_:j‖  (N_o × dim, row-major).
    let weights: [Float]
    /// G = W Wᵀ (N_o × N_o), so that ρ(r) = b(r)ᵀ G b(r) without forming all dim orbitals.
    let gram: [Float]
    /// Points per block.
    public static let blockSize = 2048

    /// Computes the field-grid normalizations of `molecule` under `model`.
    public init(model: QDFModel, molecule: Molecule) throws {
        self.model = model
        self.molecule = molecule
        let g = try model.geometry(molecule)
        geometry = g
        let dim = model.hyper.dim, nf = g.fieldCount, no = g.orbitalCount
        orbitalCount = dim
        basisCount = no
        atom = g.orbitalAtom
        q = g.orbitalQ
        var phiHat = [Float](repeating: 0, count: nf * no), phiNorm = [Float](repeating: 0, count: no)
        var cHat = [Float](repeating: 0, count: no * dim), cNorm = [Float](repeating: 0, count: dim)
        var psiNorm = [Float](repeating: 0, count: dim), psi = [Float](repeating: 0, count: nf * dim)
        var scratch = [Double](repeating: 0, count: LCAO.scratchCount(orbitals: no, dim: dim))
        model.parameters.withUnsafeBufferPointer { p in
            phiHat.withUnsafeMutableBufferPointer { ph in
            phiNorm.withUnsafeMutableBufferPointer { pn in
            cHat.withUnsafeMutableBufferPointer { ch in
            cNorm.withUnsafeMutableBufferPointer { cn in
            psiNorm.withUnsafeMutableBufferPointer { sn in
            psi.withUnsafeMutableBufferPointer { ps in
            scratch.withUnsafeMutableBufferPointer { sc in
                let saved = LCAOSaved(phiHat: ph.baseAddress!, phiNorm: pn.baseAddress!, cHat: ch.baseAddress!,
                                      cNorm: cn.baseAddress!, psiNorm: sn.baseAddress!)
                LCAO.forward(g, parameters: p.baseAddress!, offsets: model.offsets, dim: dim, saved: saved,
                             psi: ps.baseAddress!, scratch: sc.baseAddress!)
            }}}}}}}
        }
        basisNorm = phiNorm
        let zetaTable = model.tensor("zeta.weight")
        zeta = g.orbitalType.map { zetaTable[Int($0)] }
        let scale = (Float(g.electronCount) / Float(dim)).squareRoot()
        var w = cHat
        for k in 0..<no { for j in 0..<dim { w[k * dim + j] *= scale / psiNorm[j] } }
        weights = w
        var gr = [Float](repeating: 0, count: no * no)
        for k in 0..<no {
            for l in k..<no {
                var acc = 0.0
                for j in 0..<dim { acc += Double(w[k * dim + j]) * Double(w[l * dim + j]) }
                gr[k * no + l] = Float(acc); gr[l * no + k] = Float(acc)
            }
        }
        gram = gr
    }

    /// The molecule's field-grid points (ångström), in the engine's order.
    public var fieldPoints: [SIMD3<Double>] {
        var out = [SIMD3<Double>]()
        out.reserveCapacity(geometry.fieldCount)
        for a in 0..<molecule.atomCount { for s in model.sphere { out.append(s + molecule.positions[a]) } }
        return out
    }

    /// ρ at points given in ångström (model units: see the type's comment).
    public func density(at points: [SIMD3<Double>]) -> [Float] {
        evaluate(count: points.count, orbitals: []) { points[$0] }.density
    }

    /// ρ and the chosen ψ_j (0-based j) at `count` points, point(n) in ångström.
    /// Blocks of points are evaluated in parallel, each with one GEMM.
    public func evaluate(count: Int, orbitals: [Int], point: (Int) -> SIMD3<Double>) -> (density: [Float], orbitals: [[Float]]) {
        precondition(orbitals.allSatisfy { $0 >= 0 && $0 < orbitalCount }, "orbital index out of range")
        var rho = [Float](repeating: 0, count: count)
        var psiFlat = [Float](repeating: 0, count: orbitals.count * count)
        let blocks = (count + DensityField.blockSize - 1) / DensityField.blockSize
        if blocks == 0 { return (rho, orbitals.map { _ in [] }) }
        let threads = min(blocks, max(1, ProcessInfo.processInfo.activeProcessorCount))
        // GEMMs run inside our own threads: keep OpenBLAS single-threaded meanwhile.
        let blasThreads = BLAS.shared.threads
        if threads > 1 { BLAS.shared.setThreads(1) }
        defer { if threads > 1 { BLAS.shared.setThreads(blasThreads) } }
        // Coordinates first (the closure need not be thread-safe).
        var xyz = [Double](repeating: 0, count: 3 * count)
        for n in 0..<count { let p = point(n); xyz[3 * n] = p.x; xyz[3 * n + 1] = p.y; xyz[3 * n + 2] = p.z }
        let dim = orbitalCount, no = basisCount
        // W restricted to the chosen orbitals (N_o × n_sel).
        var sel = [Float](repeating: 0, count: no * orbitals.count)
        for k in 0..<no { for (o, j) in orbitals.enumerated() { sel[k * orbitals.count + o] = weights[k * dim + j] } }
        let selected = sel
        xyz.withUnsafeBufferPointer { xyzp in
        rho.withUnsafeMutableBufferPointer { rhop in
        psiFlat.withUnsafeMutableBufferPointer { psip in
            let sendable = SendablePointers(rho: rhop.baseAddress!, xyz: xyzp.baseAddress!,
                                            psi: psip.baseAddress ?? rhop.baseAddress!)
            let nsel = orbitals.count
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let basis = UnsafeMutablePointer<Float>.allocate(capacity: DensityField.blockSize * no)
                let prod = UnsafeMutablePointer<Float>.allocate(capacity: DensityField.blockSize * max(no, nsel))
                let dist = UnsafeMutablePointer<Float>.allocate(capacity: molecule.atomCount)
                defer { basis.deallocate(); prod.deallocate(); dist.deallocate() }
                var b = t
                while b < blocks {
                    let start = b * DensityField.blockSize
                    let n = min(DensityField.blockSize, count - start)
                    self.basisBlock(xyz: sendable.xyz + 3 * start, count: n, basis: basis, dist: dist)
                    // ρ_i = b_iᵀ G b_i  (P × N_o GEMM, then row dots)
                    gram.withUnsafeBufferPointer { g in
                        BLAS.shared.sgemm(.none, .none, m: n, n: no, k: no, a: basis, lda: no, b: g.baseAddress!, ldb: no,
                                          c: prod, ldc: no)
                    }
                    let r = sendable.rho + start
                    for i in 0..<n {
                        let x = basis + i * no, y = prod + i * no
                        var s: Float = 0
                        for k in 0..<no { s += x[k] * y[k] }
                        r[i] = max(s, 0)
                    }
                    // Chosen orbitals: ψ_ij = b_i · W_:j.
                    if nsel > 0 {
                        selected.withUnsafeBufferPointer { w in
                            BLAS.shared.sgemm(.none, .none, m: n, n: nsel, k: no, a: basis, lda: no, b: w.baseAddress!,
                                              ldb: nsel, c: prod, ldc: nsel)
                        }
                        for o in 0..<nsel {
                            let dst = sendable.psi + o * count + start
                            for i in 0..<n { dst[i] = prod[i * nsel + o] }
                        }
                    }
                    b += threads
                }
            }
        }}}
        return (rho, orbitals.indices.map { Array(psiFlat[($0 * count)..<(($0 + 1) * count)]) })
    }

    /// b_ik = φ_k(r_i)/‖φ_:k‖ (count × N_o) for a block of points.
    private func basisBlock(xyz: UnsafePointer<Double>, count n: Int, basis: UnsafeMutablePointer<Float>,
                            dist: UnsafeMutablePointer<Float>) {
        let no = basisCount, M = molecule.atomCount
        molecule.positions.withUnsafeBufferPointer { pos in
        atom.withUnsafeBufferPointer { atom in
        q.withUnsafeBufferPointer { q in
        zeta.withUnsafeBufferPointer { zeta in
        basisNorm.withUnsafeBufferPointer { norm in
            for i in 0..<n {
                let p = SIMD3(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2])
                // Distances as the grid computes them: Double, zero → 1e6, rounded to Float once.
                for a in 0..<M { dist[a] = Float(GridField.distance(p, pos[a])) }
                let row = basis + i * no
                for k in 0..<no {
                    row[k] = LCAO.radial(dist[Int(atom[k])], zeta: zeta[k], q: Int(q[k])) / norm[k]
                }
            }
        }}}}}
    }
}

private struct SendablePointers: @unchecked Sendable {
    let rho: UnsafeMutablePointer<Float>
    let xyz: UnsafePointer<Double>
    let psi: UnsafeMutablePointer<Float>
}
