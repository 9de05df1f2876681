import Foundation

// Prediction for molecules too large to hold their N_f × N_o basis values at once (a
// 1,000-atom molecule has 56,000 grid points and ~8,000 basis functions: 1.8 GB of φ̂
// alone), docs/model.md §13. The engine's stages, run over chunks of grid points in
// three passes, so memory is O(chunk · N_o + N_o · dim) instead of O(N_f · N_o):
//   1. φ over all points → the column norms ‖φ_:k‖;
//   2. φ̂ and Ψ = φ̂Ĉ chunk by chunk → the column norms ‖Ψ_:j‖;
//   3. ψ chunk by chunk through the energy functional, summing the readout.
// Distances are computed per chunk from the positions, never stored.

/// The chunked prediction path for large molecules (docs/model.md §13): predictions only,
/// no gradients, no HK map, no §12 shortcut.
package enum LargeMolecule {
    /// Predicted values (Ê, P values in the model's property unit, e.g. eV) for one molecule,
    /// computed in chunks of `chunkRows` grid points in memory O(chunk·N_o + N_o·dim); equal
    /// to `Engine.predict` up to Float32 rounding. Allocates its own buffers, so concurrent
    /// calls are safe. Throws `QDFError` (no file/line) for an element outside the dictionary.
    package static func predict(_ m: Molecule, model: QDFModel, chunkRows: Int = 1024,
                               compute: any ComputeBackend = defaultCompute) throws -> [Float] {
        let arch = model.architecture, hyper = arch.hyper, dim = hyper.dim, o = arch.offsets
        let layout = try BasisLayout(molecule: m, basis: arch.basis, dictionary: arch.dictionary)
        let S = arch.sphere, M = m.atomCount, no = layout.count, nf = S.count * M
        let chunk = max(1, min(chunkRows, nf))
        let phi = Buffer(chunk * no), dist = Buffer(chunk * M), cHat = Buffer(no * dim), cNorm = Buffer(dim)
        let acts = [Buffer(chunk * dim), Buffer(chunk * dim), Buffer(chunk * dim)]
        let phiNorm = Buffer(no), factor = Buffer(dim), chunkSum = Buffer(dim), s = Buffer(dim), out = Buffer(hyper.outputs)
        var phiSquares = [Double](repeating: 0, count: no), psiSquares = [Double](repeating: 0, count: dim)
        var sums = [Double](repeating: 0, count: max(no, dim))
        var readout = [Double](repeating: 0, count: dim)
        return model.parameters.withUnsafeBufferPointer { pp -> [Float] in
            let p = pp.baseAddress!
            // Ĉ: gathered coefficient rows, column-normalized.
            LCAO.gatherCoefficients(layout: layout, coefficient: p + o.coefficient, dim: dim, into: cHat.pointer)
            if let env = o.environment {
                OrbitalEnvironment.atomDistances(m.positions).withUnsafeBufferPointer { d in
                    OrbitalEnvironment.addForward(layout: layout, atomCount: M, atomDistances: d.baseAddress!, parameters: p,
                                                  offsets: env, dim: dim, into: cHat.pointer, compute: compute,
                                                  scratch: ScratchArena())
                }
            }
            sums.withUnsafeMutableBufferPointer { columnNorms(cHat.pointer, rows: no, cols: dim, ld: dim, into: cNorm.pointer,
                                                              sums: $0.baseAddress!) }
            divideColumns(cHat.pointer, rows: no, cols: dim, ld: dim, by: cNorm.pointer)

            // φ for grid points start..<start+count into `phi` (unnormalized), the grid's distances.
            func basisRows(_ start: Int, _ count: Int) {
                for r in 0..<count {
                    let i = start + r
                    let point = S[i % S.count] + m.positions[i / S.count]
                    for b in 0..<M { dist[r * M + b] = Float(GridField.distance(point, m.positions[b])) }
                }
                LCAO.basisValues(distances: dist.pointer, atomCount: M, rows: count, layout: layout, zeta: p + o.zeta,
                                 into: phi.pointer)
            }
            // φ̂ chunk, then Ψ = φ̂Ĉ chunk into acts[0].
            func orbitalRows(_ start: Int, _ c: Int) {
                basisRows(start, c)
                divideColumns(phi.pointer, rows: c, cols: no, ld: no, by: phiNorm.pointer)
                compute.gemm(.none, .none, m: c, n: dim, k: no, a: phi.pointer, lda: no, b: cHat.pointer, ldb: dim,
                             c: acts[0].pointer, ldc: dim)
            }
            func chunks(_ body: (Int, Int) -> Void) {
                var start = 0
                while start < nf { let c = min(chunk, nf - start); body(start, c); start += c }
            }
            // Pass 1: ‖φ_:k‖.
            phiSquares.withUnsafeMutableBufferPointer { sq in
                chunks { start, c in
                    basisRows(start, c)
                    accumulateColumnSquares(phi.pointer, rows: c, cols: no, ld: no, into: sq.baseAddress!)
                }
                normsFromSquares(sq.baseAddress!, count: no, into: phiNorm.pointer)
            }
            // Pass 2: ‖Ψ_:j‖, hence the ψ factors sqrt(N_e/dim)/‖Ψ_:j‖.
            psiSquares.withUnsafeMutableBufferPointer { sq in
                chunks { start, c in
                    orbitalRows(start, c)
                    accumulateColumnSquares(acts[0].pointer, rows: c, cols: dim, ld: dim, into: sq.baseAddress!)
                }
                normsFromSquares(sq.baseAddress!, count: dim, into: factor.pointer)
            }
            let scale = LCAO.orbitalScale(electrons: m.electronCount, dim: dim)
            for j in 0..<dim { factor[j] = scale / factor[j] }
            if hyper.operation == .dipole {
                // Pass 3 of the dipole readout (§20): ρ = Σ_j ψ² row by row, summing ρ_i (r_i − O).
                let centre = DipoleReadout.Centre(molecule: m)
                var electronic = SIMD3<Double>(repeating: 0)
                chunks { start, c in
                    orbitalRows(start, c)
                    scaleColumns(acts[0].pointer, rows: c, cols: dim, ld: dim, by: factor.pointer)
                    for r in 0..<c {
                        let row = acts[0].pointer + r * dim
                        let rho = dot(row, row, count: dim)
                        let i = start + r
                        electronic += Double(rho) * (S[i % S.count] + m.positions[i / S.count] - centre.origin)
                    }
                }
                out[0] = Float(DipoleReadout.debye(centre.dipole(electronic: electronic)))
                if let baseline = arch.elementBaseline { out[0] += Float(baseline.offset(m)[0]) }
                return out.array(1)
            }
            // Pass 3: ψ through the energy functional, summing the readout.
            let stack = (0...hyper.layerFunctional).map { l in l == 0 ? acts[0].pointer : acts[1 + (l - 1) % 2].pointer }
            let K = hyper.potentialFeatures
            let potential = Buffer(K > 0 ? chunk : 0), xi = Buffer(chunk * K)
            chunks { start, c in
                orbitalRows(start, c)
                scaleColumns(acts[0].pointer, rows: c, cols: dim, ld: dim, by: factor.pointer)
                if K > 0 {
                    // The potential input (§19): V at the chunk's points, then its Gaussians.
                    for r in 0..<c {
                        let i = start + r
                        potential[r] = Float(GridField.potential(at: S[i % S.count] + m.positions[i / S.count], molecule: m))
                    }
                    EnergyFunctional.potentialFeatures(potential.pointer, rows: c, count: K, into: xi.pointer)
                }
                let top = EnergyFunctional.layers(p: p, offsets: o, rows: c, dim: dim, h: stack, compute: compute,
                                                  potentialInput: K > 0 ? (UnsafePointer(xi.pointer), K) : nil)
                EnergyFunctional.sumRows(top, rows: c, dim: dim, into: chunkSum.pointer)
                for j in 0..<dim { readout[j] += Double(chunkSum[j]) }
            }
            let f = hyper.operation.factor(points: nf)
            for j in 0..<dim { s[j] = Float(readout[j]) * f }
            EnergyFunctional.property(s: s.pointer, molecules: 1, p: p, offsets: o, dim: dim, outputs: hyper.outputs,
                                      out: out.pointer, compute: compute)
            if let baseline = arch.elementBaseline {
                for (q, v) in baseline.offset(m).enumerated() { out[q] += Float(v) }
            }
            return out.array(hyper.outputs)
        }
    }

    /// Float values the regular (whole-molecule) path holds for a molecule: distances,
    /// φ̂, and ψ with its activations: N_f·M + N_f·N_o + N_f·dim·(L_f + 1) (§13; the
    /// predictor routes to `predict` above 64·2²⁰ values).
    package static func regularValues(_ m: Molecule, model: QDFModel) -> Int {
        let nf = model.sphere.count * m.atomCount
        let no = m.atomicNumbers.reduce(0) { $0 + model.basis.functionCount(atomicNumber: $1) }
        return nf * m.atomCount + nf * no + nf * model.hyper.dim * (model.hyper.layerFunctional + 1)
    }
}
