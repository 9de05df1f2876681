import Foundation

// Prediction for molecules too large to hold their N_f × N_o basis values at once (a
// 1,000-atom molecule has 56,000 grid points and ~8,000 basis functions: 1.8 GB of φ̂
// alone). The same computation as the engine's, in chunks of grid points and three
// passes, so memory is O(chunk · N_o + N_o · dim) instead of O(N_f · N_o):
//   1. φ over all points → the column norms ‖φ_:k‖;
//   2. φ̂ and Ψ = φ̂Ĉ chunk by chunk → the column norms ‖Ψ_:j‖;
//   3. ψ chunk by chunk through the energy functional, summing the readout.
// Distances are computed per chunk from the positions, never stored.

public enum LargeMolecule {
    /// Predicted values (Ê) for one molecule, computed in chunks of `chunkRows` grid points.
    public static func predict(_ m: Molecule, model: QDFModel, chunkRows: Int = 1024) throws -> [Float] {
        if let refusal = model.dictionary.refusal(m, basis: model.basis) { throw QDFError(refusal) }
        let h = model.hyper, dim = h.dim, S = model.sphere, M = m.atomCount
        var atom = [Int](), type = [Int](), q = [Int]()
        for (a, z) in m.atomicNumbers.enumerated() {
            for f in model.basis.functions(atomicNumber: z) {
                atom.append(a); type.append(model.dictionary[f.name]!); q.append(f.q)
            }
        }
        let no = atom.count, nf = S.count * M
        let chunk = max(1, min(chunkRows, nf))
        let o = model.offsets
        let phi = Buffer(chunk * no), psi = Buffer(chunk * dim), hA = Buffer(chunk * dim), hB = Buffer(chunk * dim)
        let cHat = Buffer(no * dim)
        var dist = [Float](repeating: 0, count: M)
        var phiSum = [Double](repeating: 0, count: no), psiSum = [Double](repeating: 0, count: dim)
        var readout = [Double](repeating: 0, count: dim)
        let blas = BLAS.shared
        return model.parameters.withUnsafeBufferPointer { pp -> [Float] in
            let p = pp.baseAddress!
            let zeta = p + o.zeta
            // Ĉ: gathered coefficient rows, column-normalized.
            for k in 0..<no { (cHat.pointer + k * dim).update(from: p + o.coefficient + type[k] * dim, count: dim) }
            var cn = [Double](repeating: 0, count: dim)
            for k in 0..<no { for j in 0..<dim { let v = Double(cHat[k * dim + j]); cn[j] += v * v } }
            let cNorm = cn.map { max(Float($0.squareRoot()), normalizationEpsilon) }
            for k in 0..<no { for j in 0..<dim { cHat[k * dim + j] /= cNorm[j] } }

            // φ for grid points start..<start+count into `phi` (unnormalized).
            func basisRows(_ start: Int, _ count: Int) {
                for r in 0..<count {
                    let i = start + r
                    let point = S[i % S.count] + m.positions[i / S.count]
                    for b in 0..<M { dist[b] = Float(GridField.distance(point, m.positions[b])) }
                    let row = phi.pointer + r * no
                    for k in 0..<no { row[k] = LCAO.radial(dist[atom[k]], zeta: zeta[type[k]], q: q[k]) }
                }
            }
            // Pass 1: ‖φ_:k‖.
            var start = 0
            while start < nf {
                let c = min(chunk, nf - start)
                basisRows(start, c)
                for r in 0..<c { let row = phi.pointer + r * no; for k in 0..<no { let v = Double(row[k]); phiSum[k] += v * v } }
                start += c
            }
            let phiNorm = phiSum.map { max(Float($0.squareRoot()), normalizationEpsilon) }
            // φ̂ chunk and Ψ = φ̂Ĉ chunk.
            func orbitalRows(_ start: Int, _ c: Int) {
                basisRows(start, c)
                for r in 0..<c { let row = phi.pointer + r * no; for k in 0..<no { row[k] /= phiNorm[k] } }
                blas.sgemm(.none, .none, m: c, n: dim, k: no, a: phi.pointer, lda: no, b: cHat.pointer, ldb: dim,
                           c: psi.pointer, ldc: dim)
            }
            // Pass 2: ‖Ψ_:j‖.
            start = 0
            while start < nf {
                let c = min(chunk, nf - start)
                orbitalRows(start, c)
                for r in 0..<c { let row = psi.pointer + r * dim; for j in 0..<dim { let v = Double(row[j]); psiSum[j] += v * v } }
                start += c
            }
            let scale = (Float(m.electronCount) / Float(dim)).squareRoot()
            let factor = psiSum.map { scale / max(Float($0.squareRoot()), normalizationEpsilon) }
            // Pass 3: ψ through the energy functional, summing the readout.
            start = 0
            while start < nf {
                let c = min(chunk, nf - start)
                orbitalRows(start, c)
                for r in 0..<c { let row = psi.pointer + r * dim; for j in 0..<dim { row[j] *= factor[j] } }
                var x = psi.pointer, y = hA.pointer
                for l in 0..<h.layerFunctional {
                    blas.sgemm(.none, .transpose, m: c, n: dim, k: dim, a: x, lda: dim, b: p + o.functionalWeight[l], ldb: dim,
                               c: y, ldc: dim)
                    DenseStack.biasReLU(y, rows: c, width: dim, bias: p + o.functionalBias[l])
                    x = y
                    y = (y == hA.pointer) ? hB.pointer : hA.pointer
                }
                for r in 0..<c { let row = x + r * dim; for j in 0..<dim { readout[j] += Double(row[j]) } }
                start += c
            }
            if h.operation == .mean { readout = readout.map { $0 / Double(nf) } }
            return (0..<h.outputs).map { out in
                var e = Double(p[o.propertyBias + out])
                for j in 0..<dim { e += Double(p[o.propertyWeight + out * dim + j]) * readout[j] }
                return Float(e)
            }
        }
    }

    /// Float values the regular (whole-molecule) path holds for a molecule: distances,
    /// φ̂, and ψ with its activations.
    public static func regularValues(_ m: Molecule, model: QDFModel) -> Int {
        let nf = model.sphere.count * m.atomCount
        let no = m.atomicNumbers.reduce(0) { $0 + model.basis.functionCount(atomicNumber: $1) }
        return nf * m.atomCount + nf * no + nf * model.hyper.dim * (model.hyper.layerFunctional + 1)
    }
}
