import Foundation
import QuantumDeepField
import QDFFormats
import Dispatch

// Density anywhere in space (docs/model.md §11).
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

/// ρ and ψ of one molecule at any point in space, from a model. Immutable after `init`.
public final class DensityField: Sendable {
    public let model: QDFModel
    /// The molecule as given: points and atoms are in its coordinates.
    public let molecule: Molecule
    /// The frame the model evaluates the molecule in (`ModelArchitecture.placed`; the
    /// identity for an input-frame model). Points are moved into it before evaluation, so
    /// ρ is returned in the input's coordinates: a rotated input gives the rotated field.
    public let frame: MoleculeFrame
    /// The molecule placed in `frame`.
    let placedMolecule: Molecule
    /// The geometry of the placed molecule (field grid in `frame`).
    public let geometry: MoleculeGeometry
    /// Molecular orbitals (the model's dim).
    public let orbitalCount: Int
    /// N_o basis functions.
    public let basisCount: Int
    public var electronCount: Int { molecule.electronCount }

    // The molecule's basis functions, the ζ table and ‖φ_:k‖ on the field grid.
    let layout: BasisLayout
    let zetaTable: [Float]
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
        frame = model.hyper.frame == .canonical ? MoleculeFrame.canonical(molecule) : .identity
        placedMolecule = frame.place(molecule)
        let g = try model.geometry(molecule)
        geometry = g
        let dim = model.hyper.dim, nf = g.fieldCount, no = g.orbitalCount
        orbitalCount = dim
        basisCount = no
        layout = g.basis
        // The LCAO forward pass on the field grid, for its normalizations: ‖φ_:k‖ and ‖Ψ_:j‖.
        var phiHat = [Float](repeating: 0, count: nf * no), phiNorm = [Float](repeating: 0, count: no)
        var cHat = [Float](repeating: 0, count: no * dim), cNorm = [Float](repeating: 0, count: dim)
        var psiNorm = [Float](repeating: 0, count: dim), psi = [Float](repeating: 0, count: nf * dim)
        let scratch = ScratchArena()
        model.parameters.withUnsafeBufferPointer { p in
            phiHat.withUnsafeMutableBufferPointer { ph in
            phiNorm.withUnsafeMutableBufferPointer { pn in
            cHat.withUnsafeMutableBufferPointer { ch in
            cNorm.withUnsafeMutableBufferPointer { cn in
            psiNorm.withUnsafeMutableBufferPointer { sn in
            psi.withUnsafeMutableBufferPointer { ps in
                let saved = LCAO.Saved(phiHat: ph.baseAddress!, phiNorm: pn.baseAddress!, cHat: ch.baseAddress!,
                                       cNorm: cn.baseAddress!, psiNorm: sn.baseAddress!)
                LCAO.forward(g, parameters: p.baseAddress!, offsets: model.offsets, dim: dim, saved: saved,
                             psi: ps.baseAddress!, compute: defaultCompute, scratch: scratch)
            }}}}}}
        }
        basisNorm = phiNorm
        zetaTable = model.tensor("zeta.weight")
        let scale = LCAO.orbitalScale(electrons: g.electronCount, dim: dim)
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

    /// The molecule's field-grid points (ångström, input coordinates), in the engine's order.
    public var fieldPoints: [SIMD3<Double>] {
        var out = [SIMD3<Double>]()
        out.reserveCapacity(geometry.fieldCount)
        for a in 0..<molecule.atomCount { for s in model.sphere { out.append(frame.fromFrame(s + placedMolecule.positions[a])) } }
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
        let threads = min(blocks, defaultWorkers)
        // Coordinates first (the closure need not be thread-safe), moved into the model's frame.
        var xyzValues = [Double](repeating: 0, count: 3 * count)
        for n in 0..<count { let p = frame.toFrame(point(n)); xyzValues[3 * n] = p.x; xyzValues[3 * n + 1] = p.y; xyzValues[3 * n + 2] = p.z }
        let xyz = xyzValues
        let dim = orbitalCount, no = basisCount, nsel = orbitals.count
        // W restricted to the chosen orbitals (N_o × n_sel).
        var sel = [Float](repeating: 0, count: no * nsel)
        for k in 0..<no { for (o, j) in orbitals.enumerated() { sel[k * nsel + o] = weights[k * dim + j] } }
        let selected = sel
        // Each thread takes blocks t, t + threads, …; it returns ρ and the chosen ψ of its
        // blocks, which are then placed.
        let parts = concurrentMap(threads) { t -> [(start: Int, rho: [Float], psi: [Float])] in
            var done = [(start: Int, rho: [Float], psi: [Float])]()
            let basis = UnsafeMutablePointer<Float>.allocate(capacity: DensityField.blockSize * no)
            let prod = UnsafeMutablePointer<Float>.allocate(capacity: DensityField.blockSize * max(no, nsel))
            let dist = UnsafeMutablePointer<Float>.allocate(capacity: DensityField.blockSize * molecule.atomCount)
            defer { basis.deallocate(); prod.deallocate(); dist.deallocate() }
            var b = t
            while b < blocks {
                let start = b * DensityField.blockSize
                let n = min(DensityField.blockSize, count - start)
                xyz.withUnsafeBufferPointer { self.basisBlock(xyz: $0.baseAddress! + 3 * start, count: n, basis: basis, dist: dist) }
                // ρ_i = b_iᵀ G b_i  (P × N_o GEMM, then row dots)
                gram.withUnsafeBufferPointer { g in
                    defaultCompute.gemm(.none, .none, m: n, n: no, k: no, a: basis, lda: no, b: g.baseAddress!, ldb: no,
                                        c: prod, ldc: no)
                }
                var r = [Float](repeating: 0, count: n)
                for i in 0..<n {
                    let x = basis + i * no, y = prod + i * no
                    var s: Float = 0
                    for k in 0..<no { s += x[k] * y[k] }
                    r[i] = max(s, 0)
                }
                // Chosen orbitals: ψ_ij = b_i · W_:j (point-major, n × n_sel).
                var psiBlock = [Float]()
                if nsel > 0 {
                    selected.withUnsafeBufferPointer { w in
                        defaultCompute.gemm(.none, .none, m: n, n: nsel, k: no, a: basis, lda: no, b: w.baseAddress!,
                                            ldb: nsel, c: prod, ldc: nsel)
                    }
                    psiBlock = Array(UnsafeBufferPointer(start: prod, count: n * nsel))
                }
                done.append((start, r, psiBlock))
                b += threads
            }
            return done
        }
        for part in parts {
            for block in part {
                let n = block.rho.count
                for i in 0..<n { rho[block.start + i] = block.rho[i] }
                for o in 0..<nsel { for i in 0..<n { psiFlat[o * count + block.start + i] = block.psi[i * nsel + o] } }
            }
        }
        return (rho, orbitals.indices.map { Array(psiFlat[($0 * count)..<(($0 + 1) * count)]) })
    }

    /// b_ik = φ_k(r_i)/‖φ_:k‖ (count × N_o) for a block of points: the LCAO stage's basis
    /// functions at the points' distances (computed as the grid computes them: Double, zero
    /// → 1e6, rounded to Float once). `dist` holds count × M values.
    private func basisBlock(xyz: UnsafePointer<Double>, count n: Int, basis: UnsafeMutablePointer<Float>,
                            dist: UnsafeMutablePointer<Float>) {
        let no = basisCount, M = molecule.atomCount
        placedMolecule.positions.withUnsafeBufferPointer { pos in
            for i in 0..<n {
                let p = SIMD3(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2])
                for a in 0..<M { dist[i * M + a] = Float(GridField.distance(p, pos[a])) }
            }
        }
        zetaTable.withUnsafeBufferPointer { zeta in
            LCAO.basisValues(distances: dist, atomCount: M, rows: n, layout: layout, zeta: zeta.baseAddress!, into: basis)
        }
        basisNorm.withUnsafeBufferPointer { norm in
            divideColumns(basis, rows: n, cols: no, ld: no, by: norm.baseAddress!)
        }
    }
}
