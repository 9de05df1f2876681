import Foundation

// The engine (docs/model.md §5–§8): runs a batch of molecules through the stages,
// forward and backward. It holds the stages' activations and buffers and calls the
// stages in order; the mathematics lives in the stages (LCAO, EnergyFunctional,
// FirstLayerThroughBasis, HohenbergKohnMap, Losses).
//
// A batch is only a list of molecules: LCAO and every normalization are per molecule
// (no padded block-diagonal matrices); the two DNNs see all grid points of the batch
// as one matrix. Buffers are kept between calls and only grow, so steady-state
// training and prediction allocate nothing in the hot loops.

/// ψ, ρ and V̂ of one molecule on its field grid (docs/model.md §5, §7); copies owned by
/// the value.
package struct OrbitalField: Sendable {
    /// ψ: N_f × dim, row-major (Σ ψ² = N_e unless a norm was clamped).
    package var orbitals: [Float]
    /// ρ_i = Σ_j ψ_ij² (N_f values, model units: they sum to N_e).
    package var density: [Float]
    /// V̂ (N_f values) from the Hohenberg–Kohn map, in the units of V (§4).
    package var potential: [Float]
}

/// Runs batches of molecules through a model's stages. One engine belongs to one thread
/// at a time (it is mutable scratch state); parallel work uses one engine per worker.
/// Parameters are passed to every call, so one engine serves a changing model (training)
/// as well as a fixed one (prediction). Not `Sendable`.
package final class Engine {
    /// The model architecture the engine's buffers are laid out for.
    package let architecture: ModelArchitecture
    /// Where GEMMs run.
    package let compute: any ComputeBackend
    /// Where the energy functional's upper layers (dim × dim, after the first) run in the
    /// forward pass: `compute` unless given (`--precision bf16` runs them in bfloat16, the
    /// only GEMMs that tolerate it: docs/speed.md).
    package let layerCompute: any ComputeBackend
    /// Where to compute the first functional layer through the basis (exact either way):
    /// `.automatic` where it is cheaper; `.always`/`.never` for tests and benchmarks.
    package var firstLayerThroughBasis: Policy = .automatic
    /// When to take the §12 shortcut: `automatic` (where `FirstLayerThroughBasis.pays`:
    /// N_f·N_o² + N_o·dim² + N_f·N_o·dim < N_f·N_o·dim + N_f·dim²), `always`, `never`.
    /// Never taken with L_f = 0.
    package enum Policy: Sendable { case automatic, always, never }
    /// Parts whose gradients the E path does not compute (fine-tuning, `FrozenParts`): their
    /// entries of the gradient buffer are left untouched and the work that only they need
    /// (weight-gradient GEMMs, the LCAO backward) is skipped.
    package var frozen: FrozenParts = []

    // Row bookkeeping of the current batch.
    private var batch: [MoleculeGeometry] = []
    private var rowStart: [Int] = [], rowCount: [Int] = []
    private var rows = 0
    // Per-molecule offsets into the saved values, and whether its first layer was folded.
    private var phiOffset: [Int] = [], orbOffset: [Int] = [], cOffset: [Int] = [], gramOffset: [Int] = []
    /// Per molecule of the last batch: was its first layer computed through the basis? (All
    /// false after a V-path or `orbitalFields` call, which reset it.)
    package private(set) var folded: [Bool] = []

    // LCAO's saved values.
    private let phiHat = Buffer(), phiNorm = Buffer(), cHat = Buffer(), cNorm = Buffer(), psiNorm = Buffer()
    // The first layer through the basis: G, GĈ, B, A per molecule.
    private let gram = Buffer(), gc = Buffer(), bm = Buffer(), am = Buffer()
    // Energy functional: h[0] = ψ, h[1...L], the readout s (B × dim) and Ê (B × P).
    private let h: [Buffer]
    private let s = Buffer(), out = Buffer()
    // HK map: ρ, g[0...L], the fold (u, c), V̂.
    private let rho = Buffer(), vHat = Buffer(), uc = Buffer()
    private let g: [Buffer]
    // Backward: row-sized gradients and per-batch ones.
    private let dA = Buffer(), dB = Buffer(), dC = Buffer(), ds = Buffer(), dOut = Buffer(), dRho = Buffer()
    // The sampled V step: the kept rows (indices into the batch's rows) and their ρ and dρ.
    private var kept: [Int] = []
    private let rhoKept = Buffer(), dRhoKept = Buffer()
    // Per-molecule temporaries of the stages.
    private let scratch = ScratchArena()
    /// Stage times go here when the engine runs on a `TimedCompute` (qdf bench).
    private let timer: PhaseTimer?

    /// An engine for `architecture` whose GEMMs run on `compute`. Buffers start small and
    /// grow with the largest batch seen.
    package init(architecture: ModelArchitecture, compute: any ComputeBackend = defaultCompute,
                layerCompute: (any ComputeBackend)? = nil) {
        self.architecture = architecture
        self.compute = compute
        self.layerCompute = layerCompute ?? compute
        timer = (compute as? TimedCompute)?.timer
        h = (0...architecture.hyper.layerFunctional).map { _ in Buffer() }
        g = (0...architecture.hyper.layerHK).map { _ in Buffer() }
    }

    /// An engine for `model.architecture` (the parameters are still passed to each call).
    package convenience init(model: QDFModel, compute: any ComputeBackend = defaultCompute) {
        self.init(architecture: model.architecture, compute: compute)
    }

    /// Bytes of the engine's scratch block (for tests: it stops growing after the first batch of a shape).
    package var scratchBytes: Int { scratch.blockBytes }

    private var hyper: Hyperparameters { architecture.hyper }
    private var dim: Int { architecture.hyper.dim }
    private var offsets: ParameterOffsets { architecture.offsets }

    // MARK: - Public API

    /// Predicted values (Ê, docs/model.md §5–§6 with §12) for a batch: B arrays of P values
    /// in the model's property unit (e.g. eV). `parameters` must have `layout.totalCount`
    /// values (traps otherwise); geometries must come from this architecture.
    package func predict(_ batch: [MoleculeGeometry], parameters: [Float]) -> [[Float]] {
        withParameters(parameters) { p in forwardEnergy(batch, p) }
        let P = hyper.outputs
        return (0..<batch.count).map { m in Array(UnsafeBufferPointer(start: out.pointer + m * P, count: P)) }
    }

    /// Predicted values and the readout features s_m (B arrays of dim values, after the sum
    /// or mean; Ê_m = W_p s_m + b_p, §6).
    package func predictWithReadout(_ batch: [MoleculeGeometry], parameters: [Float])
        -> (predictions: [[Float]], readout: [[Float]]) {
        let e = predict(batch, parameters: parameters)
        return (e, (0..<batch.count).map { m in Array(UnsafeBufferPointer(start: s.pointer + m * dim, count: dim)) })
    }

    /// ψ, ρ and V̂ on each molecule's field grid (copies; ψ always formed, §5, §7). Traps if
    /// `parameters` is not this model's size.
    package func orbitalFields(_ batch: [MoleculeGeometry], parameters: [Float]) -> [OrbitalField] {
        withParameters(parameters) { p in
            forwardOrbitals(batch, p)
            forwardPotential(p)
        }
        return (0..<batch.count).map { m in
            OrbitalField(orbitals: Array(UnsafeBufferPointer(start: h[0].pointer + rowStart[m] * dim, count: rowCount[m] * dim)),
                         density: Array(UnsafeBufferPointer(start: rho.pointer + rowStart[m], count: rowCount[m])),
                         potential: Array(UnsafeBufferPointer(start: vHat.pointer + rowStart[m], count: rowCount[m])))
        }
    }

    /// Loss_E of the batch (docs/model.md §8; for `.mse` in the property unit squared); adds
    /// its gradient into `gradient` (parameter layout, not zeroed first). Every geometry needs
    /// P property values; traps if `parameters` or `gradient` is not `layout.totalCount` long.
    package func energyLossAndGradient(_ batch: [MoleculeGeometry], parameters: [Float], gradient: inout [Float],
                                      loss: EnergyLoss = .mse) -> Double {
        withGradient(parameters, &gradient) { energyLossAndGradient(batch, $0, grad: $1, loss: loss) }
    }

    /// Loss_V of the batch (docs/model.md §8, mean over all grid points) plus, with a
    /// `densityWeight` > 0, w·Loss_ρ over the molecules that carry a density target (§16);
    /// adds its gradient into `gradient` (parameter layout, not zeroed first). Traps if a
    /// geometry was built without the potential, or on wrongly sized `parameters` or `gradient`.
    /// With a `sample` of fraction f < 1, Loss_V is estimated on the grid points it keeps
    /// (docs/model.md §7, "The sampled V step").
    package func potentialLossAndGradient(_ batch: [MoleculeGeometry], parameters: [Float], gradient: inout [Float],
                                         densityWeight: Float = 0, sample: PotentialSample? = nil) -> Double {
        withGradient(parameters, &gradient) {
            potentialLossAndGradient(batch, $0, grad: $1, densityWeight: densityWeight, sample: sample)
        }
    }

    private func withGradient(_ parameters: [Float], _ gradient: inout [Float],
                              _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Double) -> Double {
        precondition(gradient.count == architecture.layout.totalCount, "gradient size")
        return withParameters(parameters) { p in gradient.withUnsafeMutableBufferPointer { body(p, $0.baseAddress!) } }
    }

    private func withParameters<T>(_ parameters: [Float], _ body: (UnsafePointer<Float>) -> T) -> T {
        precondition(parameters.count == architecture.layout.totalCount, "the parameters are not this model's")
        return parameters.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    // MARK: - Bookkeeping

    private func lcaoSaved(_ m: Int) -> LCAO.Saved {
        LCAO.Saved(phiHat: phiHat.pointer + phiOffset[m], phiNorm: phiNorm.pointer + orbOffset[m],
                   cHat: cHat.pointer + cOffset[m], cNorm: cNorm.pointer + m * dim, psiNorm: psiNorm.pointer + m * dim)
    }

    private func foldSaved(_ m: Int) -> FirstLayerThroughBasis.Saved {
        .init(gram: gram.pointer + gramOffset[m], gc: gc.pointer + cOffset[m], b: bm.pointer + cOffset[m],
              a: am.pointer + cOffset[m])
    }

    /// Row and buffer bookkeeping for a batch; reserves the LCAO saved values and ψ.
    private func prepare(_ batch: [MoleculeGeometry]) {
        self.batch = batch
        rowStart = []; rowCount = []; phiOffset = []; orbOffset = []; cOffset = []; gramOffset = []
        var r = 0, pf = 0, po = 0, pc = 0, pg = 0
        for gm in batch {
            rowStart.append(r); rowCount.append(gm.fieldCount)
            phiOffset.append(pf); orbOffset.append(po); cOffset.append(pc); gramOffset.append(pg)
            r += gm.fieldCount; pf += gm.fieldCount * gm.orbitalCount; po += gm.orbitalCount
            let counts = FirstLayerThroughBasis.savedCounts(orbitals: gm.orbitalCount, dim: dim)
            pc += counts.perMatrix; pg += counts.gram
        }
        rows = r
        phiHat.reserve(pf); phiNorm.reserve(po); cHat.reserve(pc)
        cNorm.reserve(batch.count * dim); psiNorm.reserve(batch.count * dim)
        h[0].reserve(rows * dim)
        folded = [Bool](repeating: false, count: batch.count)
    }

    // MARK: - Forward

    /// LCAO for a batch: ψ for all grid points into h[0].
    private func forwardOrbitals(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>) {
        prepare(batch)
        for (m, gm) in batch.enumerated() {
            scratch.reset()
            LCAO.forward(gm, parameters: p, offsets: offsets, dim: dim, saved: lcaoSaved(m),
                         psi: h[0].pointer + rowStart[m] * dim, compute: compute, scratch: scratch)
        }
    }

    /// The E path: Ê (B × P) into `out`. The first functional layer goes through the basis
    /// for molecules where that is cheaper, so ψ is formed only for the others.
    private func forwardEnergy(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>) {
        if hyper.operation == .dipole { forwardDipole(batch, p); return }
        prepare(batch)
        let L = hyper.layerFunctional, B = batch.count, o = offsets
        for l in 1..<h.count { h[l].reserve(rows * dim) }
        s.reserve(B * dim); out.reserve(B * hyper.outputs)
        let pc = (cOffset.last ?? 0) + (batch.last?.orbitalCount ?? 0) * dim
        let pg = (gramOffset.last ?? 0) + (batch.last.map { $0.orbitalCount * $0.orbitalCount } ?? 0)
        gram.reserve(pg); gc.reserve(pc); bm.reserve(pc); am.reserve(pc)
        var mark = timer == nil ? 0 : PhaseTimer.now()
        for (m, gm) in batch.enumerated() {
            scratch.reset()
            let sv = lcaoSaved(m)
            LCAO.basisForward(gm, zeta: p + o.zeta, saved: sv, scratch: scratch)
            timer?.lap(.basis, &mark)
            LCAO.coefficientForward(gm, parameters: p, offsets: o, dim: dim, saved: sv, compute: compute, scratch: scratch)
            timer?.lap(.coefficients, &mark)
            folded[m] = EnergyFunctional.foldsFirstLayer(firstLayerThroughBasis, gm, hyper: hyper)
            if folded[m] {
                FirstLayerThroughBasis.forward(gm, w0: p + o.functionalWeight[0], dim: dim, lcao: sv, fold: foldSaved(m),
                                               z0: h[1].pointer + rowStart[m] * dim, compute: compute, scratch: scratch)
            } else {
                let psi = h[0].pointer + rowStart[m] * dim
                LCAO.productForward(gm, dim: dim, saved: sv, psi: psi, compute: compute, scratch: scratch)
                if L >= 1 {
                    EnergyFunctional.firstLayer(psi: psi, rows: gm.fieldCount, dim: dim, w0: p + o.functionalWeight[0],
                                                z0: h[1].pointer + rowStart[m] * dim, compute: compute)
                }
            }
            if let wv = o.potentialInput {
                EnergyFunctional.addPotentialInput(gm, wv: p + wv, count: hyper.potentialFeatures, dim: dim,
                                                   z0: h[1].pointer + rowStart[m] * dim, compute: compute, scratch: scratch)
            }
            timer?.lap(.orbitals, &mark)
        }
        if L >= 1 {
            EnergyFunctional.activateFirstLayer(h[1].pointer, rows: rows, dim: dim, bias: p + o.functionalBias[0])
            EnergyFunctional.upperLayers(p: p, offsets: o, rows: rows, dim: dim, h: h[1...].map(\.pointer), compute: layerCompute)
        }
        timer?.lap(.layers, &mark)
        EnergyFunctional.readout(top: h[L].pointer, rowStart: rowStart, rowCount: rowCount, dim: dim,
                                 operation: hyper.operation, s: s.pointer)
        EnergyFunctional.property(s: s.pointer, molecules: B, p: p, offsets: o, dim: dim, outputs: hyper.outputs,
                                  out: out.pointer, compute: compute)
        EnergyFunctional.addOutputOffsets(batch, outputs: hyper.outputs, out: out.pointer)
        timer?.lap(.readout, &mark)
    }

    /// The E path of the dipole readout (§20): ψ for all rows, ρ, and Ê_m = |μ_m| (debye)
    /// into `out`. The energy functional and its head take no part.
    private func forwardDipole(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>) {
        var mark = timer == nil ? 0 : PhaseTimer.now()
        forwardOrbitals(batch, p)
        rho.reserve(rows); out.reserve(batch.count)
        HohenbergKohnMap.density(psi: h[0].pointer, rows: rows, dim: dim, rho: rho.pointer)
        timer?.lap(.orbitals, &mark)
        for (m, gm) in batch.enumerated() {
            guard let f = gm.dipoleFrame else { preconditionFailure("geometry of '\(gm.id)' was built without the dipole frame") }
            out[m] = Float(DipoleReadout.magnitude(rho: rho.pointer + rowStart[m], frame: f))
        }
        EnergyFunctional.addOutputOffsets(batch, outputs: 1, out: out.pointer)
        timer?.lap(.readout, &mark)
    }

    /// The V path after `forwardOrbitals`: ρ and V̂ for all rows.
    private func forwardPotential(_ p: UnsafePointer<Float>) {
        let H = hyper.hiddenHK
        rho.reserve(rows); vHat.reserve(rows); uc.reserve(HohenbergKohnMap.foldCount(hidden: H))
        for l in 0..<g.count where l > 0 || g.count == 1 { g[l].reserve(rows * H) }
        HohenbergKohnMap.density(psi: h[0].pointer, rows: rows, dim: dim, rho: rho.pointer)
        HohenbergKohnMap.forward(hyper: hyper, offsets: offsets, p: p, rows: rows, rho: rho.pointer,
                                 g: g.map(\.pointer), uc: uc.pointer, vHat: vHat.pointer, compute: compute)
    }

    // MARK: - Losses and gradients

    /// Loss_E for the batch (forward included); adds its gradient into `grad`.
    package func energyLossAndGradient(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>,
                                       grad: UnsafeMutablePointer<Float>, loss: EnergyLoss = .mse) -> Double {
        forwardEnergy(batch, p)
        let B = batch.count, P = hyper.outputs
        dOut.reserve(B * P)
        var sum = 0.0
        for m in 0..<B {
            precondition(batch[m].properties.count == P, "molecule '\(batch[m].id)' has \(batch[m].properties.count) property values, the model \(P)")
            sum += batch[m].properties.withUnsafeBufferPointer { t in
                Losses.error(loss, predicted: out.pointer + m * P, target: t.baseAddress!, count: P, terms: B * P,
                             gradient: dOut.pointer + m * P)
            }
        }
        backwardEnergy(p, grad: grad)
        return sum / Double(B * P)
    }

    /// Backward of the E path from dÊ (in `dOut`), after `forwardEnergy`.
    private func backwardEnergy(_ p: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>) {
        let B = batch.count, L = hyper.layerFunctional, o = offsets
        // What this backward pass must reach (fine-tuning freezes parts, `frozen`).
        let orbitals = !frozen.contains(.orbitals), functional = !frozen.contains(.functional)
        if hyper.operation == .dipole {
            // d|μ_m| → dρ (§20) → dψ = 2ψ·dρ → the orbitals; nothing else has a gradient.
            guard orbitals else { return }
            dRho.reserve(rows); dA.reserve(rows * dim)
            dRho.pointer.update(repeating: 0, count: rows)
            for (m, gm) in batch.enumerated() {
                DipoleReadout.backward(dMagnitude: Double(dOut[m]), rho: rho.pointer + rowStart[m], frame: gm.dipoleFrame!,
                                       dRho: dRho.pointer + rowStart[m])
            }
            HohenbergKohnMap.densityBackward(psi: h[0].pointer, dRho: dRho.pointer, rows: rows, dim: dim, dPsi: dA.pointer)
            backwardOrbitals(p, dPsi: dA.pointer, grad: grad)
            return
        }
        dA.reserve(rows * dim); dB.reserve(rows * dim); dC.reserve(rows * dim); ds.reserve(B * dim)
        EnergyFunctional.propertyBackward(dOut: dOut.pointer, s: s.pointer, molecules: B, p: p, offsets: o, dim: dim,
                                          outputs: hyper.outputs, grad: grad, ds: ds.pointer, compute: compute)
        // Only the head trains: nothing below it needs a gradient.
        if !orbitals && (!functional || L == 0) { return }
        EnergyFunctional.readoutBackward(ds: ds.pointer, rowStart: rowStart, rowCount: rowCount, dim: dim,
                                         operation: hyper.operation, dTop: dA.pointer)
        if L == 0 { backwardOrbitals(p, dPsi: dA.pointer, grad: grad); return }
        // Layers L−1…1 leave d(h¹) in dC; the first layer's ReLU turns it into dz⁰.
        EnergyFunctional.upperLayersBackward(p: p, offsets: o, rows: rows, dim: dim, h: h[1...].map(\.pointer), grad: grad,
                                             dTop: dA.pointer, dScratch: dB.pointer, dH1: dC.pointer, compute: compute,
                                             frozen: !functional)
        EnergyFunctional.activateFirstLayerBackward(dC.pointer, h1: h[1].pointer, rows: rows, dim: dim,
                                                    gradBias: functional ? grad + o.functionalBias[0] : nil)
        let w0 = p + o.functionalWeight[0], gw0 = functional ? grad + o.functionalWeight[0] : nil
        for (m, gm) in batch.enumerated() {
            scratch.reset()
            let dz0 = dC.pointer + rowStart[m] * dim, sv = lcaoSaved(m)
            if let wv = o.potentialInput, functional {
                EnergyFunctional.potentialInputBackward(gm, dZ0: dz0, count: hyper.potentialFeatures, dim: dim,
                                                        gradWv: grad + wv, compute: compute, scratch: scratch)
            }
            if folded[m] {
                let d = FirstLayerThroughBasis.backward(gm, w0: w0, gradW0: gw0, dim: dim, lcao: sv, fold: foldSaved(m),
                                                        dZ0: dz0, compute: compute, scratch: scratch, orbitals: orbitals)
                if let d {
                    LCAO.coefficientBackward(gm, parameters: p, offsets: o, dim: dim, saved: sv, dCHat: d.dCHat, grad: grad,
                                             compute: compute, scratch: scratch)
                    LCAO.basisBackward(gm, offsets: o, saved: sv, dPhiHat: d.dPhiHat, grad: grad, scratch: scratch)
                }
            } else {
                let psi = h[0].pointer + rowStart[m] * dim, dpsi = dA.pointer + rowStart[m] * dim
                EnergyFunctional.firstLayerBackward(dZ0: dz0, psi: psi, rows: gm.fieldCount, dim: dim, w0: w0, gradW0: gw0,
                                                    dPsi: orbitals ? dpsi : nil, compute: compute)
                if orbitals {
                    LCAO.backward(gm, parameters: p, offsets: o, dim: dim, saved: sv, psi: psi, dPsi: dpsi, grad: grad,
                                  compute: compute, scratch: scratch)
                }
            }
        }
    }

    /// Loss_V for the batch (forward included); adds its gradient into `grad`.
    package func potentialLossAndGradient(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>,
                                          grad: UnsafeMutablePointer<Float>, densityWeight: Float = 0,
                                          sample: PotentialSample? = nil) -> Double {
        if let sample, sample.fraction < 1 {
            return sampledPotentialLossAndGradient(batch, p, grad: grad, densityWeight: densityWeight, sample: sample)
        }
        forwardOrbitals(batch, p)
        forwardPotential(p)
        dOut.reserve(rows)
        var sum = 0.0
        for m in 0..<batch.count {
            precondition(batch[m].potential.count == rowCount[m], "geometry of '\(batch[m].id)' was built without the potential")
            sum += batch[m].potential.withUnsafeBufferPointer { t in
                Losses.squaredError(predicted: vHat.pointer + rowStart[m], target: t.baseAddress!, count: rowCount[m],
                                    terms: rows, gradient: dOut.pointer + rowStart[m])
            }
        }
        sum += backwardPotential(p, grad: grad, densityWeight: densityWeight)
        return sum / Double(rows)
    }

    /// Backward of the V path from dV̂ (in `dOut`), with Loss_ρ's gradient added to dρ
    /// when `densityWeight` > 0; returns w·Loss_ρ's sum over the batch (not yet ÷ rows).
    private func backwardPotential(_ p: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                   densityWeight: Float) -> Double {
        let H = hyper.hiddenHK
        dA.reserve(rows * max(H, dim)); dB.reserve(rows * max(H, dim)); dC.reserve(rows * max(H, dim))
        dRho.reserve(rows)
        scratch.reset()
        HohenbergKohnMap.backward(hyper: hyper, offsets: offsets, p: p, grad: grad, rows: rows, rho: rho.pointer,
                                  g: g.map(\.pointer), dV: dOut.pointer, uc: uc.pointer,
                                  dTop: dA.pointer, dScratch: dB.pointer, dG: dC.pointer, dRho: dRho.pointer,
                                  compute: compute, scratch: scratch)
        var densityLoss = 0.0
        if densityWeight > 0 {
            for (m, gm) in batch.enumerated() where !gm.densityTarget.isEmpty {
                precondition(gm.densityTarget.count == rowCount[m], "density target of '\(gm.id)' does not match its grid")
                densityLoss += gm.densityTarget.withUnsafeBufferPointer { q in
                    Losses.densityDeviation(rho: rho.pointer + rowStart[m], target: q.baseAddress!, count: rowCount[m],
                                            electrons: gm.electronCount, weight: densityWeight, terms: rows,
                                            dRho: dRho.pointer + rowStart[m])
                }
            }
        }
        HohenbergKohnMap.densityBackward(psi: h[0].pointer, dRho: dRho.pointer, rows: rows, dim: dim, dPsi: dA.pointer)
        backwardOrbitals(p, dPsi: dA.pointer, grad: grad)
        return densityLoss
    }

    /// Loss_V estimated on the rows `sample` keeps (docs/model.md §7, "The sampled V step"):
    /// ψ and ρ on every row (the normalizations need them), the HK map forward and backward
    /// on the kept rows only, Σ_kept (V̂ − V)² / (f·N_f) as the loss, dρ zero on the other
    /// rows, then the density term (on every row) and the orbitals' backward as usual.
    private func sampledPotentialLossAndGradient(_ batch: [MoleculeGeometry], _ p: UnsafePointer<Float>,
                                                 grad: UnsafeMutablePointer<Float>, densityWeight: Float,
                                                 sample: PotentialSample) -> Double {
        forwardOrbitals(batch, p)
        let H = hyper.hiddenHK
        rho.reserve(rows)
        HohenbergKohnMap.density(psi: h[0].pointer, rows: rows, dim: dim, rho: rho.pointer)
        kept.removeAll(keepingCapacity: true)
        for (m, gm) in batch.enumerated() {
            precondition(gm.potential.count == rowCount[m], "geometry of '\(gm.id)' was built without the potential")
            let key = sample.moleculeKey(gm.id)
            for i in 0..<rowCount[m] where sample.keeps(row: i, moleculeKey: key) { kept.append(rowStart[m] + i) }
        }
        let k = kept.count
        let terms = sample.fraction * Double(rows)
        dRho.reserve(rows)
        dRho.pointer.update(repeating: 0, count: rows)
        var sum = 0.0
        if k > 0 {
            rhoKept.reserve(k); dRhoKept.reserve(k); vHat.reserve(k); dOut.reserve(k)
            uc.reserve(HohenbergKohnMap.foldCount(hidden: H))
            for l in 0..<g.count where l > 0 || g.count == 1 { g[l].reserve(k * H) }
            dA.reserve(k * H); dB.reserve(k * H); dC.reserve(k * H)
            let r = rho.pointer, rk = rhoKept.pointer
            for (j, i) in kept.enumerated() { rk[j] = r[i] }
            HohenbergKohnMap.forward(hyper: hyper, offsets: offsets, p: p, rows: k, rho: rk,
                                     g: g.map(\.pointer), uc: uc.pointer, vHat: vHat.pointer, compute: compute)
            // Targets by kept row: molecule m's rows are rowStart[m] ..< rowStart[m] + rowCount[m].
            let scale = Float(2 / terms)
            var m = 0
            for (j, i) in kept.enumerated() {
                while i >= rowStart[m] + rowCount[m] { m += 1 }
                let diff = vHat[j] - batch[m].potential[i - rowStart[m]]
                sum += Double(diff) * Double(diff)
                dOut[j] = scale * diff
            }
            scratch.reset()
            HohenbergKohnMap.backward(hyper: hyper, offsets: offsets, p: p, grad: grad, rows: k, rho: rk,
                                      g: g.map(\.pointer), dV: dOut.pointer, uc: uc.pointer,
                                      dTop: dA.pointer, dScratch: dB.pointer, dG: dC.pointer, dRho: dRhoKept.pointer,
                                      compute: compute, scratch: scratch)
            let dr = dRho.pointer, drk = dRhoKept.pointer
            for (j, i) in kept.enumerated() { dr[i] = drk[j] }
        }
        var densityLoss = 0.0
        if densityWeight > 0 {
            for (m, gm) in batch.enumerated() where !gm.densityTarget.isEmpty {
                precondition(gm.densityTarget.count == rowCount[m], "density target of '\(gm.id)' does not match its grid")
                densityLoss += gm.densityTarget.withUnsafeBufferPointer { q in
                    Losses.densityDeviation(rho: rho.pointer + rowStart[m], target: q.baseAddress!, count: rowCount[m],
                                            electrons: gm.electronCount, weight: densityWeight, terms: rows,
                                            dRho: dRho.pointer + rowStart[m])
                }
            }
        }
        dA.reserve(rows * dim)
        HohenbergKohnMap.densityBackward(psi: h[0].pointer, dRho: dRho.pointer, rows: rows, dim: dim, dPsi: dA.pointer)
        backwardOrbitals(p, dPsi: dA.pointer, grad: grad)
        return sum / terms + densityLoss / Double(rows)
    }

    /// LCAO backward for every molecule of the batch from dψ (rows × dim, overwritten).
    private func backwardOrbitals(_ p: UnsafePointer<Float>, dPsi: UnsafeMutablePointer<Float>,
                                  grad: UnsafeMutablePointer<Float>) {
        for (m, gm) in batch.enumerated() {
            scratch.reset()
            LCAO.backward(gm, parameters: p, offsets: offsets, dim: dim, saved: lcaoSaved(m), psi: h[0].pointer + rowStart[m] * dim,
                          dPsi: dPsi + rowStart[m] * dim, grad: grad, compute: compute, scratch: scratch)
        }
    }
}

extension WorkerPool where Worker == Engine {
    /// The `owned` shares of molecules 0..<count cut into `shares` contiguous shares (share s:
    /// ⌊count·s/shares⌋ ..< ⌊count·(s+1)/shares⌋), one engine per owned share, in batches of
    /// `batchSize` from the share's start: the engine calls a process running all `shares`
    /// makes for them (a rank of a process group runs only its own).
    package func predict(count: Int, shares n: Int, owned: Range<Int>, batchSize: Int, parameters: [Float],
                         geometries: @escaping @Sendable (Range<Int>) throws -> [MoleculeGeometry]) throws -> [[Float]] {
        let parts = try run(owned.count) { k, engine -> [[Float]] in
            let w = owned.lowerBound + k
            var res = [[Float]]()
            let share = ShareLayout.molecules(ofShare: w, count: count, shares: n)
            var i = share.lowerBound
            let hi = share.upperBound
            while i < hi {
                let end = min(i + batchSize, hi)
                res += engine.predict(try geometries(i..<end), parameters: parameters)
                i = end
            }
            return res
        }
        return parts.flatMap { $0 }
    }
}
