import Foundation

// The engine: runs a batch of molecules through the model, forward and backward.
// A batch is only a list of molecules: LCAO and every normalization are per molecule
// (no padded block-diagonal matrices); the two DNNs see all grid points of the batch
// as one matrix. Buffers are kept between calls and only grow.

public final class Engine {
    public let model: QDFModel

    // Row bookkeeping of the current batch.
    public private(set) var rowStart: [Int] = []
    public private(set) var rowCount: [Int] = []
    public private(set) var rows = 0
    private var batch: [MoleculeGeometry] = []

    // LCAO saved values, per molecule at these offsets.
    private var phiOffset: [Int] = [], orbOffset: [Int] = [], cOffset: [Int] = []
    let phiHat = Buffer(), phiNorm = Buffer(), cHat = Buffer(), cNorm = Buffer(), psiNorm = Buffer()
    private var scratch = UnsafeMutablePointer<Double>.allocate(capacity: 1)
    private var scratchCount = 0

    // Energy functional activations h[0...L] (h[0] = ψ), readout, outputs.
    let h: [Buffer]
    let s = Buffer(), out = Buffer()
    // HK map: ρ, g[0...L], V̂.
    let rho = Buffer(), vHat = Buffer()
    let g: [Buffer]
    // Backward scratch.
    let dA = Buffer(), dB = Buffer(), dC = Buffer(), dPhi = Buffer(), dCHat = Buffer(), ds = Buffer(), dOut = Buffer()
    let dRho = Buffer(), uc = Buffer(), ab = Buffer()
    // First functional layer through the basis: per-molecule G (N_o²) and GĈ, B, A (N_o·dim).
    let gram = Buffer(), gc = Buffer(), bm = Buffer(), am = Buffer(), dG = Buffer()
    private var gramOffset: [Int] = []
    /// Per molecule of the current batch: was the first layer computed through the basis?
    public private(set) var folded: [Bool] = []
    /// Where to compute the first functional layer through the basis (exact either way):
    /// `.automatic` where it is cheaper; `.always`/`.never` for tests and benchmarks.
    public var firstLayerThroughBasis: Policy = .automatic
    public enum Policy: Sendable { case automatic, always, never }

    public init(model: QDFModel) {
        self.model = model
        h = (0...model.hyper.layerFunctional).map { _ in Buffer() }
        g = (0...model.hyper.layerHK).map { _ in Buffer() }
    }

    deinit { scratch.deallocate() }

    var dim: Int { model.hyper.dim }

    private func ensureScratch(_ n: Int) {
        if n > scratchCount {
            scratch.deallocate()
            scratchCount = n
            scratch = .allocate(capacity: n)
        }
    }

    private func saved(_ m: Int) -> LCAOSaved {
        LCAOSaved(phiHat: phiHat.pointer + phiOffset[m], phiNorm: phiNorm.pointer + orbOffset[m],
                  cHat: cHat.pointer + cOffset[m], cNorm: cNorm.pointer + m * dim, psiNorm: psiNorm.pointer + m * dim)
    }

    /// Row and buffer bookkeeping for a batch.
    private func prepare(_ batch: [MoleculeGeometry]) {
        self.batch = batch
        rowStart = []; rowCount = []; phiOffset = []; orbOffset = []; cOffset = []; gramOffset = []
        var r = 0, pf = 0, po = 0, pc = 0, pg = 0, maxNo = 0
        for gm in batch {
            rowStart.append(r); rowCount.append(gm.fieldCount)
            phiOffset.append(pf); orbOffset.append(po); cOffset.append(pc); gramOffset.append(pg)
            r += gm.fieldCount; pf += gm.fieldCount * gm.orbitalCount; po += gm.orbitalCount
            pc += gm.orbitalCount * dim; pg += gm.orbitalCount * gm.orbitalCount
            maxNo = max(maxNo, gm.orbitalCount)
        }
        rows = r
        phiHat.reserve(pf); phiNorm.reserve(po); cHat.reserve(pc)
        cNorm.reserve(batch.count * dim); psiNorm.reserve(batch.count * dim)
        ensureScratch(LCAO.scratchCount(orbitals: maxNo, dim: dim))
        h[0].reserve(rows * dim)
        folded = [Bool](repeating: false, count: batch.count)
    }

    /// LCAO forward for a batch: ψ for all grid points into h[0].
    public func forwardOrbitals(_ batch: [MoleculeGeometry]) {
        prepare(batch)
        let psi = h[0].pointer
        model.parameters.withUnsafeBufferPointer { p in
            for (m, gm) in batch.enumerated() {
                LCAO.forward(gm, parameters: p.baseAddress!, offsets: model.offsets, dim: dim, saved: saved(m),
                             psi: psi + rowStart[m] * dim, scratch: scratch)
            }
        }
    }

    private func foldSaved(_ m: Int) -> FirstLayerThroughBasis.Saved {
        .init(gram: gram.pointer + gramOffset[m], gc: gc.pointer + cOffset[m], b: bm.pointer + cOffset[m],
              a: am.pointer + cOffset[m])
    }

    /// E-path forward for a batch: Ê (B × P). The first functional layer goes through
    /// the basis for molecules where that is cheaper, so ψ is formed only for the others.
    @discardableResult
    public func forwardEnergy(_ batch: [MoleculeGeometry]) -> UnsafePointer<Float> {
        prepare(batch)
        let L = model.hyper.layerFunctional, B = batch.count
        for l in 1..<h.count { h[l].reserve(rows * dim) }
        s.reserve(B * dim); out.reserve(B * model.hyper.outputs)
        if L >= 1 {
            let pc = (cOffset.last ?? 0) + (batch.last?.orbitalCount ?? 0) * dim
            let pg = (gramOffset.last ?? 0) + (batch.last.map { $0.orbitalCount * $0.orbitalCount } ?? 0)
            gram.reserve(pg); gc.reserve(pc); bm.reserve(pc); am.reserve(pc)
        }
        model.parameters.withUnsafeBufferPointer { pp in
            let p = pp.baseAddress!, o = model.offsets
            for (m, gm) in batch.enumerated() {
                let sv = saved(m)
                LCAO.basisForward(gm, zeta: p + o.zeta, phiHat: sv.phiHat, phiNorm: sv.phiNorm, scratch: scratch)
                LCAO.coefficientForward(gm, coefficient: p + o.coefficient, dim: dim, cHat: sv.cHat, cNorm: sv.cNorm,
                                        scratch: scratch)
                let fold: Bool
                switch firstLayerThroughBasis {
                case .always: fold = true
                case .never: fold = false
                case .automatic:
                    fold = FirstLayerThroughBasis.pays(fieldCount: gm.fieldCount, orbitalCount: gm.orbitalCount, dim: dim)
                }
                if L >= 1 && fold {
                    folded[m] = true
                    FirstLayerThroughBasis.forward(gm, w0: p + o.functionalWeight[0], dim: dim, lcao: sv,
                                                   fold: foldSaved(m), z0: h[1].pointer + rowStart[m] * dim,
                                                   scratch: scratch)
                } else {
                    let psi = h[0].pointer + rowStart[m] * dim
                    LCAO.productForward(gm, dim: dim, saved: sv, psi: psi, scratch: scratch)
                    if L >= 1 {
                        BLAS.shared.sgemm(.none, .transpose, m: gm.fieldCount, n: dim, k: dim, a: psi, lda: dim,
                                          b: p + o.functionalWeight[0], ldb: dim, c: h[1].pointer + rowStart[m] * dim, ldc: dim)
                    }
                }
            }
            if L >= 1 { DenseStack.biasReLU(h[1].pointer, rows: rows, width: dim, bias: p + o.functionalBias[0]) }
            EnergyFunctional.forward(model: model, p: p, rows: rows, rowStart: rowStart, rowCount: rowCount,
                                     h: h.map(\.pointer), first: min(L, 1), s: s.pointer, out: out.pointer)
        }
        return UnsafePointer(out.pointer)
    }

    /// The readout s_m (dim values: Σ or mean of the top layer over molecule m's grid
    /// points) of the last `forwardEnergy` batch; Ê_m = W_p s_m + b_p.
    public func readout(_ m: Int) -> UnsafePointer<Float> { UnsafePointer(s.pointer + m * model.hyper.dim) }

    /// ψ of molecule m of the current batch (N_f × dim, row-major).
    public func orbitals(_ m: Int) -> UnsafePointer<Float> { UnsafePointer(h[0].pointer + rowStart[m] * dim) }

    /// Predictions for a batch (B arrays of P values).
    public func predict(_ batch: [MoleculeGeometry]) -> [[Float]] {
        let e = forwardEnergy(batch)
        let P = model.hyper.outputs
        return (0..<batch.count).map { m in (0..<P).map { e[m * P + $0] } }
    }

    /// HK-map forward after `forwardOrbitals`: ρ and V̂ for all rows.
    @discardableResult
    public func forwardPotential() -> UnsafePointer<Float> {
        let H = model.hyper.hiddenHK
        rho.reserve(rows); vHat.reserve(rows)
        for l in 0..<g.count where l > 0 || g.count == 1 { g[l].reserve(rows * H) }
        uc.reserve(2 * H)
        HohenbergKohnMap.density(psi: h[0].pointer, rows: rows, dim: dim, rho: rho.pointer)
        model.parameters.withUnsafeBufferPointer { p in
            HohenbergKohnMap.forward(model: model, p: p.baseAddress!, rows: rows, rho: rho.pointer,
                                     g: g.map(\.pointer), uc: uc.pointer, vHat: vHat.pointer)
        }
        return UnsafePointer(vHat.pointer)
    }

    /// ρ of molecule m (N_f values) after `forwardOrbitals` + `forwardPotential`.
    public func density(_ m: Int) -> UnsafePointer<Float> { UnsafePointer(rho.pointer + rowStart[m]) }

    // MARK: - Losses and gradients

    /// Loss_E = mean over (molecules × outputs) of (E − Ê)² for the batch; adds its
    /// gradient into `grad` (parameter layout). Runs the forward pass itself.
    public func energyLossAndGradient(_ batch: [MoleculeGeometry], grad: UnsafeMutablePointer<Float>) -> Double {
        let e = forwardEnergy(batch)
        let B = batch.count, P = model.hyper.outputs
        dOut.reserve(B * P)
        var loss = 0.0
        let n = Float(B * P)
        for m in 0..<B {
            for q in 0..<P {
                let diff = e[m * P + q] - batch[m].properties[q]
                loss += Double(diff) * Double(diff)
                dOut[m * P + q] = 2 * diff / n
            }
        }
        backwardEnergy(dOut: dOut.pointer, grad: grad)
        return loss / Double(n)
    }

    /// Backward of the E path from dÊ (B × P), after `forwardEnergy`.
    public func backwardEnergy(dOut: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>) {
        let B = batch.count, L = model.hyper.layerFunctional
        dA.reserve(rows * dim); dB.reserve(rows * dim); dC.reserve(rows * dim); ds.reserve(B * dim)
        let first = min(L, 1)
        model.parameters.withUnsafeBufferPointer { pp in
            let p = pp.baseAddress!, o = model.offsets
            // Layers first..L−1 and the readout: d(h[first]) into dC.
            EnergyFunctional.backward(model: model, p: p, grad: grad, rows: rows, rowStart: rowStart,
                                      rowCount: rowCount, first: first, h: h.map(\.pointer), s: s.pointer, dOut: dOut,
                                      ds: ds.pointer, dTop: dA.pointer, dScratch: dB.pointer, dPsi: dC.pointer)
            if L == 0 { backwardOrbitals(dPsi: dC.pointer, grad: grad); return }
            // First layer: dZ₀ = d(h¹) ⊙ (h¹ > 0), bias gradient over all rows.
            let dz = dC.pointer, h1 = h[1].pointer, gb0 = grad + o.functionalBias[0]
            for i in 0..<rows {
                let r = dz + i * dim, y = h1 + i * dim
                for j in 0..<dim { if y[j] <= 0 { r[j] = 0 }; gb0[j] += r[j] }
            }
            var maxPhi = 0, maxC = 0, maxG = 0
            for gm in batch {
                maxPhi = max(maxPhi, gm.fieldCount * gm.orbitalCount); maxC = max(maxC, gm.orbitalCount * dim)
                maxG = max(maxG, gm.orbitalCount * gm.orbitalCount)
            }
            dPhi.reserve(maxPhi); dCHat.reserve(max(maxC, maxG)); dG.reserve(maxG)
            let w0 = p + o.functionalWeight[0], gw0 = grad + o.functionalWeight[0]
            for (m, gm) in batch.enumerated() {
                let dz0 = dz + rowStart[m] * dim
                if folded[m] {
                    // dA and dB (N_o × dim each) live in the (now free) dA/dB row buffers.
                    FirstLayerThroughBasis.backward(gm, offsets: o, w0: w0, gradW0: gw0, dim: dim, lcao: saved(m),
                                                    fold: foldSaved(m), dZ0: dz0, dA: dA.pointer, dB: dB.pointer,
                                                    dG: dG.pointer, dPhiHat: dPhi.pointer, grad: grad, scratch: scratch)
                } else {
                    let psi = h[0].pointer + rowStart[m] * dim, dpsi = dA.pointer
                    BLAS.shared.sgemm(.transpose, .none, m: dim, n: dim, k: gm.fieldCount, a: dz0, lda: dim, b: psi, ldb: dim,
                                      beta: 1, c: gw0, ldc: dim)
                    BLAS.shared.sgemm(.none, .none, m: gm.fieldCount, n: dim, k: dim, a: dz0, lda: dim, b: w0, ldb: dim,
                                      c: dpsi, ldc: dim)
                    LCAO.backward(gm, parameters: p, offsets: o, dim: dim, saved: saved(m), psi: psi, dPsi: dpsi,
                                  dPhiHat: dPhi.pointer, dCHat: dCHat.pointer, grad: grad, scratch: scratch)
                }
            }
        }
    }

    /// Loss_V = mean over all grid points of (V − V̂)²; adds its gradient into `grad`.
    public func potentialLossAndGradient(_ batch: [MoleculeGeometry], grad: UnsafeMutablePointer<Float>) -> Double {
        forwardOrbitals(batch)
        let v = forwardPotential()
        dOut.reserve(rows)
        var loss = 0.0
        let n = Float(rows)
        for m in 0..<batch.count {
            let target = batch[m].potential
            precondition(target.count == rowCount[m], "geometry of '\(batch[m].id)' was built without the potential")
            for i in 0..<rowCount[m] {
                let r = rowStart[m] + i
                let diff = v[r] - target[i]
                loss += Double(diff) * Double(diff)
                dOut[r] = 2 * diff / n
            }
        }
        backwardPotential(dV: dOut.pointer, grad: grad)
        return loss / Double(n)
    }

    /// Backward of the V path from dV̂ (rows).
    public func backwardPotential(dV: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>) {
        let H = model.hyper.hiddenHK
        dA.reserve(rows * max(H, dim)); dB.reserve(rows * max(H, dim)); dC.reserve(rows * max(H, dim))
        dRho.reserve(rows); ab.reserve(2 * H)
        model.parameters.withUnsafeBufferPointer { p in
            HohenbergKohnMap.backward(model: model, p: p.baseAddress!, grad: grad, rows: rows, rho: rho.pointer,
                                      g: g.map(\.pointer), dV: dV, uc: uc.pointer, ab: ab.pointer,
                                      dTop: dA.pointer, dScratch: dB.pointer, dG: dC.pointer, dRho: dRho.pointer)
        }
        // ρ_i = Σ_j ψ_ij²  →  dψ_ij = 2 ψ_ij dρ_i
        let psi = h[0].pointer, dPsi = dA.pointer
        for i in 0..<rows {
            let r = psi + i * dim, dr = dPsi + i * dim, f = 2 * dRho[i]
            for j in 0..<dim { dr[j] = f * r[j] }
        }
        backwardOrbitals(dPsi: dPsi, grad: grad)
    }

    /// LCAO backward for every molecule of the batch from dψ (rows × dim, overwritten).
    func backwardOrbitals(dPsi: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>) {
        var maxPhi = 0, maxC = 0
        for gm in batch { maxPhi = max(maxPhi, gm.fieldCount * gm.orbitalCount); maxC = max(maxC, gm.orbitalCount * dim) }
        dPhi.reserve(maxPhi); dCHat.reserve(maxC)
        model.parameters.withUnsafeBufferPointer { p in
            for (m, gm) in batch.enumerated() {
                LCAO.backward(gm, parameters: p.baseAddress!, offsets: model.offsets, dim: dim, saved: saved(m),
                              psi: h[0].pointer + rowStart[m] * dim, dPsi: dPsi + rowStart[m] * dim,
                              dPhiHat: dPhi.pointer, dCHat: dCHat.pointer, grad: grad, scratch: scratch)
            }
        }
    }
}

extension Engine {
    /// Predicts `count` molecules (0..<count) in contiguous shares, one engine per share
    /// running concurrently (BLAS single-threaded), `batchSize` molecules at a time;
    /// `geometries` gives the geometry of a range of molecules. Results keep the order.
    /// The first error thrown by any share is rethrown.
    static func predictInShares(engines: [Engine], count: Int, batchSize: Int,
                                geometries: @escaping @Sendable (Range<Int>) throws -> [MoleculeGeometry]) throws -> [[Float]] {
        let n = max(1, min(engines.count, count))
        var parts = [[[Float]]](repeating: [], count: n)
        let failure = LockedError()
        let shared = UnsafeTransfer(engines)
        parts.withUnsafeMutableBufferPointer { pp in
            let out = UnsafeTransfer(pp.baseAddress!)
            let body: @Sendable (Int) -> Void = { w in
                var res = [[Float]]()
                var i = count * w / n
                let hi = count * (w + 1) / n
                do {
                    while i < hi {
                        let end = min(i + batchSize, hi)
                        res += shared.value[w].predict(try geometries(i..<end))
                        i = end
                    }
                } catch { failure.set(error) }
                out.value[w] = res
            }
            if n == 1 { body(0) } else {
                BLAS.shared.singleThreaded { DispatchQueue.concurrentPerform(iterations: n, execute: body) }
            }
        }
        if let e = failure.error { throw e }
        return parts.flatMap { $0 }
    }
}
