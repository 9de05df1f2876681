// The Hohenberg–Kohn map (docs/model.md §7): a DNN from the electron density ρ at
// each grid point to the external potential V there, forward and backward.
//
//   ρ_i = Σ_j ψ_ij²
//   g⁰_i = ρ_i w_d + b_d                 (1 → H, no activation)
//   gˡ⁺¹ = relu(gˡ W_HK,lᵀ + b_HK,l)
//   V̂_i = w_v · g_i + b_v                 (H → 1)
//
// g⁰ is an affine function of one number, so the first HK layer needs no GEMM:
//   g¹_i = relu(ρ_i u + c),  u = W_HK,0 w_d,  c = W_HK,0 b_d + b_HK,0
// and its backward reduces to two outer products (see `backward`). This is exact and
// saves one R×H×H GEMM in the forward pass and two in the backward pass (§12).

/// The Hohenberg–Kohn map's stages, forward and backward (docs/model.md §7, §12), over
/// caller-owned row-major buffers; its members are package-internal and used by the engine.
package enum HohenbergKohnMap {
    /// ρ_i = Σ_j ψ_ij² for every row.
    package static func density(psi: UnsafePointer<Float>, rows: Int, dim: Int, rho: UnsafeMutablePointer<Float>) {
        for i in 0..<rows { rho[i] = dot(psi + i * dim, psi + i * dim, count: dim) }
    }

    /// ρ_i = Σ_j ψ_ij²  →  dψ_ij = 2 ψ_ij dρ_i (rows × dim).
    package static func densityBackward(psi: UnsafePointer<Float>, dRho: UnsafePointer<Float>, rows: Int, dim: Int,
                                        dPsi: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let r = psi + i * dim, dr = dPsi + i * dim, f = 2 * dRho[i]
            for j in 0..<dim { dr[j] = f * r[j] }
        }
    }

    /// Floats the forward keeps for the backward besides the activations: u and c (2·H).
    package static func foldCount(hidden H: Int) -> Int { 2 * H }

    /// u = W_HK,0 w_d and c = W_HK,0 b_d + b_HK,0 (2·H values into `uc`).
    static func firstLayerFold(hyper: Hyperparameters, offsets o: ParameterOffsets, p: UnsafePointer<Float>,
                               uc: UnsafeMutablePointer<Float>) {
        let H = hyper.hiddenHK
        let w0 = p + o.hkWeight[0], b0 = p + o.hkBias[0], wd = p + o.densityWeight, bd = p + o.densityBias
        for r in 0..<H {
            let row = w0 + r * H
            var u: Float = 0, c: Float = 0
            for k in 0..<H { u += row[k] * wd[k]; c += row[k] * bd[k] }
            uc[r] = u
            uc[H + r] = c + b0[r]
        }
    }

    /// Fills g[1...L] (rows × H; g[0] is not formed when L ≥ 1) and V̂ (rows).
    /// `uc` needs 2·H values.
    package static func forward(hyper: Hyperparameters, offsets o: ParameterOffsets, p: UnsafePointer<Float>, rows: Int,
                                rho: UnsafePointer<Float>, g: [UnsafeMutablePointer<Float>], uc: UnsafeMutablePointer<Float>,
                                vHat: UnsafeMutablePointer<Float>, compute: any ComputeBackend) {
        let H = hyper.hiddenHK, L = hyper.layerHK
        if L == 0 {
            let wd = p + o.densityWeight, bd = p + o.densityBias, g0 = g[0]
            for i in 0..<rows {
                let r = g0 + i * H, x = rho[i]
                for j in 0..<H { r[j] = x * wd[j] + bd[j] }
            }
        } else {
            firstLayerFold(hyper: hyper, offsets: o, p: p, uc: uc)
            let g1 = g[1], u = UnsafePointer(uc), c = UnsafePointer(uc + H)
            for i in 0..<rows {
                let r = g1 + i * H, x = rho[i]
                for j in 0..<H { r[j] = max(x * u[j] + c[j], 0) }
            }
            DenseStack.forward(rows: rows, width: H, weights: o.hkWeight.dropFirst().map { p + $0 },
                               biases: o.hkBias.dropFirst().map { p + $0 }, activations: Array(g[1...]), compute: compute)
        }
        let top = g[L]
        let wv = p + o.potentialWeight, bv = p[o.potentialBias]
        for i in 0..<rows { vHat[i] = dot(top + i * H, wv, count: H) + bv }
    }

    /// Given dV̂ (rows), accumulates the HK-side gradients and writes dρ (rows).
    /// `dTop`, `dScratch`, `dG` are rows × H; `uc` holds the forward's fold (2·H).
    package static func backward(hyper: Hyperparameters, offsets o: ParameterOffsets, p: UnsafePointer<Float>,
                                 grad: UnsafeMutablePointer<Float>, rows: Int,
                                 rho: UnsafePointer<Float>, g: [UnsafeMutablePointer<Float>], dV: UnsafePointer<Float>,
                                 uc: UnsafePointer<Float>,
                                 dTop: UnsafeMutablePointer<Float>, dScratch: UnsafeMutablePointer<Float>,
                                 dG: UnsafeMutablePointer<Float>, dRho: UnsafeMutablePointer<Float>,
                                 compute: any ComputeBackend, scratch: ScratchArena) {
        let H = hyper.hiddenHK, L = hyper.layerHK
        let top = g[L]
        let wv = p + o.potentialWeight
        let gwv = grad + o.potentialWeight
        var gbv: Float = 0
        for i in 0..<rows {
            let r = top + i * H, dr = dTop + i * H, dv = dV[i]
            gbv += dv
            for j in 0..<H { gwv[j] += dv * r[j]; dr[j] = dv * wv[j] }
        }
        grad[o.potentialBias] += gbv
        let wd = p + o.densityWeight, bd = p + o.densityBias
        let gwd = grad + o.densityWeight, gbd = grad + o.densityBias
        if L == 0 {
            // g⁰ = ρ w_d + b_d feeds W_potential directly.
            for i in 0..<rows {
                let r = dTop + i * H, x = rho[i]
                var acc: Float = 0
                for j in 0..<H { gwd[j] += r[j] * x; gbd[j] += r[j]; acc += r[j] * wd[j] }
                dRho[i] = acc
            }
            return
        }
        // Layers 1..L−1 as a dense stack: leaves d(g¹) in dG.
        DenseStack.backward(rows: rows, width: H, weights: o.hkWeight.dropFirst().map { UnsafePointer(p + $0) },
                            activations: g[1...].map { UnsafePointer($0) },
                            weightGrads: o.hkWeight.dropFirst().map { grad + $0 },
                            biasGrads: o.hkBias.dropFirst().map { grad + $0 },
                            dTop: dTop, dScratch: dScratch, dInput: dG, compute: compute)
        // First layer: dZ = d(g¹) ⊙ (g¹ > 0);  α = Σ_i ρ_i dZ_i,  β = Σ_i dZ_i,  dρ_i = dZ_i · u.
        let g1 = g[1], u = uc
        let alpha = scratch.floats(2 * H), beta = alpha + H
        alpha.update(repeating: 0, count: 2 * H)
        for i in 0..<rows {
            let dz = dG + i * H, y = g1 + i * H, x = rho[i]
            var acc: Float = 0
            for j in 0..<H {
                let v = y[j] > 0 ? dz[j] : 0
                alpha[j] += x * v
                beta[j] += v
                acc += v * u[j]
            }
            dRho[i] = acc
        }
        // dW_HK,0 += α w_dᵀ + β b_dᵀ;  db_HK,0 += β;  dw_d += W_HK,0ᵀ α;  db_d += W_HK,0ᵀ β.
        let w0 = p + o.hkWeight[0], gw0 = grad + o.hkWeight[0], gb0 = grad + o.hkBias[0]
        for r in 0..<H {
            let a = alpha[r], b = beta[r]
            let grow = gw0 + r * H, wrow = w0 + r * H
            for k in 0..<H {
                grow[k] += a * wd[k] + b * bd[k]
                gwd[k] += wrow[k] * a
                gbd[k] += wrow[k] * b
            }
            gb0[r] += b
        }
    }
}

/// The grid points a sampled V step fits (docs/model.md §7, "The sampled V step"): each row
/// of each molecule on its own with probability `fraction`, decided by a hash of the step's
/// `key`, the molecule's id and the row, so that the choice depends neither on how a batch
/// is split into shares or processes nor on anything but the step and the molecule.
package struct PotentialSample: Sendable, Equatable {
    /// The expected share of the grid points kept, in (0, 1].
    package let fraction: Double
    /// The step's key (the trainer derives it from the seed and the V step's count).
    package let key: UInt64
    private let threshold: UInt64

    package init(fraction: Double, key: UInt64) {
        precondition(fraction > 0 && fraction <= 1, "the sampled fraction lies in (0, 1]")
        self.fraction = fraction
        self.key = key
        let t = fraction * 0x1p64
        threshold = t >= 0x1p64 ? .max : UInt64(t)
    }

    /// The key of a molecule in this step: FNV-1a of its id, mixed with the step's key.
    package func moleculeKey(_ id: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Self.mix(h ^ key)
    }

    /// Whether row `row` of the molecule with key `moleculeKey` is fitted in this step.
    @inline(__always)
    package func keeps(row: Int, moleculeKey: UInt64) -> Bool {
        Self.mix(moleculeKey &+ UInt64(row) &* 0x9E37_79B9_7F4A_7C15) < threshold
    }

    /// SplitMix64's output function.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
