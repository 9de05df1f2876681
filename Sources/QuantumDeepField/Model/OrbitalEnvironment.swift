import Foundation

// The orbital environment (docs/model.md §18), an option that is off in the reference
// recipe: LCAO coefficients that depend on each atom's neighbourhood. The reference gives
// every basis function of one orbital type the same coefficient row C_t, so a carbon 2p
// enters ψ alike in benzene and in ethane. Here each atom gets a feature vector from
// continuous-filter convolutions over its interatomic distances (SchNet's interaction
// blocks), and each basis function's coefficient row gets a term from its atom's features:
//
//   e_ab,κ  = exp(−γ (d_ab − μ_κ)²),  μ_κ = κ·r_c/(K−1),  γ = 1/(2 (r_c/(K−1))²)   pairs a ≠ b, d_ab < r_c
//   f(d)    = ½ (cos(π d / r_c) + 1)
//   x⁰_a    = embedding[t₀(a)]                         (t₀(a): the type of atom a's first basis function)
//   for l = 0 … L_e − 1:
//     W_ab  = (ssp(e_ab F_{l,0}ᵀ + f_{l,0}) F_{l,1}ᵀ + f_{l,1}) · f(d_ab)       P × F
//     y     = xˡ V_lᵀ                                                          M × F
//     m_a   = Σ_b y_b ⊙ W_ab
//     xˡ⁺¹  = xˡ + ssp(m U_{l,0}ᵀ + u_{l,0}) U_{l,1}ᵀ + u_{l,1}
//   C_k:   = coefficient[t(k)] + (x^{L_e}_{a(k)} ⊙ gate[t(k)]) Outᵀ             N_o × dim
//
// with ssp(x) = ln(½eˣ + ½). Only distances enter, so the term is invariant under
// rotations, reflections and translations, and atoms in another order permute it with
// them. The rest of the model (φ, Ĉ, ψ, ρ, E, the HK map) is unchanged.

/// The size of the orbital environment (docs/model.md §18; metadata keys `environment_*`).
public struct EnvironmentShape: Sendable, Equatable {
    /// L_e, the number of interaction layers (≥ 1).
    public var layers: Int
    /// F, the width of the atom features and filters.
    public var features: Int
    /// K, the number of Gaussians of the radial basis (≥ 2).
    public var gaussians: Int
    /// r_c, the cutoff radius in Å: farther atoms do not interact.
    public var cutoff: Double

    public init(layers: Int = 3, features: Int = 64, gaussians: Int = 32, cutoff: Double = 5) {
        self.layers = layers; self.features = features; self.gaussians = gaussians; self.cutoff = cutoff
    }

    /// The Gaussians' spacing r_c/(K−1) and width parameter γ = 1/(2·spacing²).
    public var spacing: Double { cutoff / Double(gaussians - 1) }
    public var gamma: Double { 0.5 / (spacing * spacing) }

    /// Throws `QDFError` for L_e < 1, F < 1, K < 2 or a cutoff that is not positive and finite.
    public func validate() throws {
        guard layers >= 1 else { throw QDFError("the orbital environment needs at least one layer (got \(layers))") }
        guard features >= 1 else { throw QDFError("the orbital environment needs at least one feature (got \(features))") }
        guard gaussians >= 2 else { throw QDFError("the orbital environment needs at least two Gaussians (got \(gaussians))") }
        guard cutoff > 0, cutoff.isFinite else { throw QDFError("the orbital environment's cutoff must be positive (got \(cutoff))") }
    }

    /// The tensors of the environment, in layout order (names as in docs/model.md §10).
    func tensors(orbitalTypes nt: Int, dim: Int) -> [(String, [Int])] {
        let F = features, K = gaussians
        var t: [(String, [Int])] = [("environment.embedding.weight", [nt, F])]
        for l in 0..<layers {
            t += [("environment.\(l).filter.0.weight", [F, K]), ("environment.\(l).filter.0.bias", [F]),
                  ("environment.\(l).filter.1.weight", [F, F]), ("environment.\(l).filter.1.bias", [F]),
                  ("environment.\(l).input.weight", [F, F]),
                  ("environment.\(l).update.0.weight", [F, F]), ("environment.\(l).update.0.bias", [F]),
                  ("environment.\(l).update.1.weight", [F, F]), ("environment.\(l).update.1.bias", [F])]
        }
        t += [("environment.gate.weight", [nt, F]), ("environment.output.weight", [dim, F])]
        return t
    }
}

/// The offsets of the environment's tensors in the flat parameter buffer, with its shape.
package struct EnvironmentOffsets: Sendable {
    package let shape: EnvironmentShape
    /// embedding N_t × F, gate N_t × F, output dim × F.
    package let embedding: Int, gate: Int, output: Int
    /// Per layer: filter F×K (+F), F×F (+F); input F×F; update F×F (+F), F×F (+F).
    package let filter0: [Int], filter0Bias: [Int], filter1: [Int], filter1Bias: [Int], input: [Int]
    package let update0: [Int], update0Bias: [Int], update1: [Int], update1Bias: [Int]

    init(_ layout: ParameterLayout, _ shape: EnvironmentShape) {
        func o(_ n: String) -> Int { layout[n]!.offset }
        func per(_ suffix: String) -> [Int] { (0..<shape.layers).map { o("environment.\($0).\(suffix)") } }
        self.shape = shape
        embedding = o("environment.embedding.weight"); gate = o("environment.gate.weight"); output = o("environment.output.weight")
        filter0 = per("filter.0.weight"); filter0Bias = per("filter.0.bias")
        filter1 = per("filter.1.weight"); filter1Bias = per("filter.1.bias")
        input = per("input.weight")
        update0 = per("update.0.weight"); update0Bias = per("update.0.bias")
        update1 = per("update.1.weight"); update1Bias = per("update.1.bias")
    }
}

/// The orbital environment's forward and backward for one molecule (docs/model.md §18),
/// over caller-owned buffers and the caller's scratch arena.
package enum OrbitalEnvironment {
    /// ln(½eˣ + ½), stable for any x.
    @inline(__always)
    static func ssp(_ x: Float) -> Float { max(x, 0) + log1pf(expf(-abs(x))) - Float(M_LN2) }
    /// d ssp / dx = σ(x).
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// The values one forward pass keeps (pointers into the scratch arena).
    struct Pass {
        var pairs = 0
        var pairAtom: UnsafeMutablePointer<Int32>, pairOther: UnsafeMutablePointer<Int32>
        var cutoff: UnsafeMutablePointer<Float>            // P
        var rbf: UnsafeMutablePointer<Float>               // P × K
        var filterPre: [UnsafeMutablePointer<Float>] = []  // per layer, P × F
        var filterHidden: [UnsafeMutablePointer<Float>] = []  // P × F
        var filter: [UnsafeMutablePointer<Float>] = []     // W (cutoff applied), P × F
        var x: [UnsafeMutablePointer<Float>] = []          // x⁰ … x^L, M × F each
        var y: [UnsafeMutablePointer<Float>] = []          // M × F
        var message: [UnsafeMutablePointer<Float>] = []    // m, M × F
        var updatePre: [UnsafeMutablePointer<Float>] = []  // M × F
        var update: [UnsafeMutablePointer<Float>] = []     // ssp(updatePre), M × F
        var z: UnsafeMutablePointer<Float>                 // N_o × F
    }

    /// The atom features and the per-orbital term z (N_o × F, before `Out`) for one
    /// molecule; everything in `scratch`.
    static func features(layout: BasisLayout, atomCount M: Int, atomDistances d: UnsafePointer<Float>,
                         parameters p: UnsafePointer<Float>, offsets o: EnvironmentOffsets,
                         compute: any ComputeBackend, scratch: ScratchArena) -> Pass {
        let sh = o.shape, F = sh.features, K = sh.gaussians, L = sh.layers
        let rc = Float(sh.cutoff), gamma = Float(sh.gamma), spacing = Float(sh.spacing)
        // Count the pairs first: a large molecule has far fewer within the cutoff than M².
        var count = 0
        for a in 0..<M { for b in 0..<M where b != a && d[a * M + b] < rc { count += 1 } }
        let room = max(count, 1)
        var pass = Pass(pairAtom: scratch.int32s(room), pairOther: scratch.int32s(room),
                        cutoff: scratch.floats(room), rbf: scratch.floats(room * K),
                        z: scratch.floats(layout.count * F))
        // Pairs a ≠ b within the cutoff, grouped by a.
        var P = 0
        for a in 0..<M {
            for b in 0..<M where b != a {
                let r = d[a * M + b]
                guard r < rc else { continue }
                pass.pairAtom[P] = Int32(a); pass.pairOther[P] = Int32(b)
                pass.cutoff[P] = 0.5 * (cosf(Float.pi * r / rc) + 1)
                let e = pass.rbf + P * K
                for k in 0..<K { let t = r - Float(k) * spacing; e[k] = -gamma * t * t }
                VectorMath.expInPlace(e, count: K)
                P += 1
            }
        }
        pass.pairs = P
        // x⁰: each atom's embedding row, by the type of its first basis function.
        let x0 = scratch.floats(M * F)
        layout.atom.withUnsafeBufferPointer { atom in
        layout.type.withUnsafeBufferPointer { type in
            var a = -1
            for k in 0..<layout.count where Int(atom[k]) != a {
                a = Int(atom[k])
                (x0 + a * F).update(from: p + o.embedding + Int(type[k]) * F, count: F)
            }
        }}
        pass.x.append(x0)
        for l in 0..<L {
            let pre = scratch.floats(P * F), hidden = scratch.floats(P * F), w = scratch.floats(P * F)
            let x = pass.x[l], y = scratch.floats(M * F), m = scratch.floats(M * F)
            let upre = scratch.floats(M * F), u = scratch.floats(M * F), next = scratch.floats(M * F)
            if P > 0 {
                compute.gemm(.none, .transpose, m: P, n: F, k: K, a: pass.rbf, lda: K, b: p + o.filter0[l], ldb: K,
                             c: pre, ldc: F)
                let b0 = p + o.filter0Bias[l]
                for i in 0..<P {
                    let r = pre + i * F, h = hidden + i * F
                    for j in 0..<F { r[j] += b0[j]; h[j] = ssp(r[j]) }
                }
                compute.gemm(.none, .transpose, m: P, n: F, k: F, a: hidden, lda: F, b: p + o.filter1[l], ldb: F,
                             c: w, ldc: F)
                let b1 = p + o.filter1Bias[l]
                for i in 0..<P {
                    let r = w + i * F, f = pass.cutoff[i]
                    for j in 0..<F { r[j] = (r[j] + b1[j]) * f }
                }
            }
            compute.gemm(.none, .transpose, m: M, n: F, k: F, a: x, lda: F, b: p + o.input[l], ldb: F, c: y, ldc: F)
            m.update(repeating: 0, count: M * F)
            for i in 0..<P {
                let mr = m + Int(pass.pairAtom[i]) * F, yr = y + Int(pass.pairOther[i]) * F, wr = w + i * F
                for j in 0..<F { mr[j] += yr[j] * wr[j] }
            }
            compute.gemm(.none, .transpose, m: M, n: F, k: F, a: m, lda: F, b: p + o.update0[l], ldb: F, c: upre, ldc: F)
            let c0 = p + o.update0Bias[l]
            for i in 0..<M {
                let r = upre + i * F, h = u + i * F
                for j in 0..<F { r[j] += c0[j]; h[j] = ssp(r[j]) }
            }
            compute.gemm(.none, .transpose, m: M, n: F, k: F, a: u, lda: F, b: p + o.update1[l], ldb: F, c: next, ldc: F)
            let c1 = p + o.update1Bias[l]
            for i in 0..<M {
                let r = next + i * F, xr = x + i * F
                for j in 0..<F { r[j] += c1[j] + xr[j] }
            }
            pass.filterPre.append(pre); pass.filterHidden.append(hidden); pass.filter.append(w)
            pass.y.append(y); pass.message.append(m); pass.updatePre.append(upre); pass.update.append(u)
            pass.x.append(next)
        }
        // z_k = x^L_{a(k)} ⊙ gate[t(k)].
        let top = pass.x[L]
        layout.atom.withUnsafeBufferPointer { atom in
        layout.type.withUnsafeBufferPointer { type in
            for k in 0..<layout.count {
                let zr = pass.z + k * F, xr = top + Int(atom[k]) * F, gr = p + o.gate + Int(type[k]) * F
                for j in 0..<F { zr[j] = xr[j] * gr[j] }
            }
        }}
        return pass
    }

    /// C += z Outᵀ: adds the environment's term to the gathered coefficient rows `c`
    /// (N_o × dim) of one molecule. Scratch values stay until the caller's next reset.
    package static func addForward(layout: BasisLayout, atomCount M: Int, atomDistances d: UnsafePointer<Float>,
                                   parameters p: UnsafePointer<Float>, offsets o: EnvironmentOffsets, dim: Int,
                                   into c: UnsafeMutablePointer<Float>, compute: any ComputeBackend, scratch: ScratchArena) {
        let pass = features(layout: layout, atomCount: M, atomDistances: d, parameters: p, offsets: o,
                            compute: compute, scratch: scratch)
        let F = o.shape.features
        compute.gemm(.none, .transpose, m: layout.count, n: dim, k: F, a: pass.z, lda: F, b: p + o.output, ldb: F,
                     beta: 1, c: c, ldc: dim)
    }

    /// Backward from dC (N_o × dim, the gradient of the coefficient rows before their
    /// normalization): recomputes the forward pass in `scratch` and adds the gradients of
    /// every environment tensor into `grad` (parameter layout).
    package static func backward(layout: BasisLayout, atomCount M: Int, atomDistances d: UnsafePointer<Float>,
                                 parameters p: UnsafePointer<Float>, offsets o: EnvironmentOffsets, dim: Int,
                                 dC: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>,
                                 compute: any ComputeBackend, scratch: ScratchArena) {
        let pass = features(layout: layout, atomCount: M, atomDistances: d, parameters: p, offsets: o,
                            compute: compute, scratch: scratch)
        let sh = o.shape, F = sh.features, K = sh.gaussians, L = sh.layers, no = layout.count, P = pass.pairs
        // dOut += dCᵀ z;  dz = dC Out.
        compute.gemm(.transpose, .none, m: dim, n: F, k: no, a: dC, lda: dim, b: pass.z, ldb: F,
                     beta: 1, c: grad + o.output, ldc: F)
        let dz = scratch.floats(no * F)
        compute.gemm(.none, .none, m: no, n: F, k: dim, a: dC, lda: dim, b: p + o.output, ldb: F, c: dz, ldc: F)
        // z = x^L_a ⊙ gate_t:  dgate_t += dz ⊙ x^L_a,  dx^L_a += dz ⊙ gate_t.
        let dx = scratch.floats(M * F)
        dx.update(repeating: 0, count: M * F)
        let top = pass.x[L]
        layout.atom.withUnsafeBufferPointer { atom in
        layout.type.withUnsafeBufferPointer { type in
            for k in 0..<no {
                let a = Int(atom[k]), t = Int(type[k])
                let dzr = dz + k * F, xr = top + a * F, gr = p + o.gate + t * F
                let dgr = grad + o.gate + t * F, dxr = dx + a * F
                for j in 0..<F { dgr[j] += dzr[j] * xr[j]; dxr[j] += dzr[j] * gr[j] }
            }
        }}
        let dv = scratch.floats(M * F), dm = scratch.floats(M * F), dy = scratch.floats(M * F)
        let dw = scratch.floats(max(P, 1) * F), dh = scratch.floats(max(P, 1) * F)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let x = pass.x[l], u = pass.update[l], upre = pass.updatePre[l], m = pass.message[l], y = pass.y[l]
            // xˡ⁺¹ = xˡ + v:  dv = dxˡ⁺¹ (dx keeps it for the residual).
            // v = u U1ᵀ + u1.
            sumRows(dx, rows: M, width: F, into: grad + o.update1Bias[l])
            compute.gemm(.transpose, .none, m: F, n: F, k: M, a: dx, lda: F, b: u, ldb: F, beta: 1,
                         c: grad + o.update1[l], ldc: F)
            compute.gemm(.none, .none, m: M, n: F, k: F, a: dx, lda: F, b: p + o.update1[l], ldb: F, c: dv, ldc: F)
            // u = ssp(m U0ᵀ + u0).
            for i in 0..<(M * F) { dv[i] *= sigmoid(upre[i]) }
            sumRows(dv, rows: M, width: F, into: grad + o.update0Bias[l])
            compute.gemm(.transpose, .none, m: F, n: F, k: M, a: dv, lda: F, b: m, ldb: F, beta: 1,
                         c: grad + o.update0[l], ldc: F)
            compute.gemm(.none, .none, m: M, n: F, k: F, a: dv, lda: F, b: p + o.update0[l], ldb: F, c: dm, ldc: F)
            // m_a = Σ_b y_b ⊙ W_ab:  dy_b += dm_a ⊙ W_ab,  dW_ab = dm_a ⊙ y_b.
            dy.update(repeating: 0, count: M * F)
            let w = pass.filter[l]
            for i in 0..<P {
                let a = Int(pass.pairAtom[i]), b = Int(pass.pairOther[i])
                let dmr = dm + a * F, yr = y + b * F, wr = w + i * F, dyr = dy + b * F, dwr = dw + i * F
                for j in 0..<F { dyr[j] += dmr[j] * wr[j]; dwr[j] = dmr[j] * yr[j] }
            }
            // y = xˡ Vᵀ:  dV += dyᵀ xˡ,  dxˡ = dxˡ⁺¹ + dy V.
            compute.gemm(.transpose, .none, m: F, n: F, k: M, a: dy, lda: F, b: x, ldb: F, beta: 1,
                         c: grad + o.input[l], ldc: F)
            compute.gemm(.none, .none, m: M, n: F, k: F, a: dy, lda: F, b: p + o.input[l], ldb: F, beta: 1, c: dx, ldc: F)
            guard P > 0 else { continue }
            // W = (h F1ᵀ + f1)·f(d):  d(h F1ᵀ + f1) = dW·f(d).
            for i in 0..<P {
                let r = dw + i * F, f = pass.cutoff[i]
                for j in 0..<F { r[j] *= f }
            }
            sumRows(dw, rows: P, width: F, into: grad + o.filter1Bias[l])
            compute.gemm(.transpose, .none, m: F, n: F, k: P, a: dw, lda: F, b: pass.filterHidden[l], ldb: F, beta: 1,
                         c: grad + o.filter1[l], ldc: F)
            compute.gemm(.none, .none, m: P, n: F, k: F, a: dw, lda: F, b: p + o.filter1[l], ldb: F, c: dh, ldc: F)
            // h = ssp(e F0ᵀ + f0).
            let pre = pass.filterPre[l]
            for i in 0..<(P * F) { dh[i] *= sigmoid(pre[i]) }
            sumRows(dh, rows: P, width: F, into: grad + o.filter0Bias[l])
            compute.gemm(.transpose, .none, m: F, n: K, k: P, a: dh, lda: F, b: pass.rbf, ldb: K, beta: 1,
                         c: grad + o.filter0[l], ldc: K)
        }
        // x⁰_a = embedding[t₀(a)].
        layout.atom.withUnsafeBufferPointer { atom in
        layout.type.withUnsafeBufferPointer { type in
            var a = -1
            for k in 0..<no where Int(atom[k]) != a {
                a = Int(atom[k])
                let target = grad + o.embedding + Int(type[k]) * F, dxr = dx + a * F
                for j in 0..<F { target[j] += dxr[j] }
            }
        }}
    }

    @inline(__always)
    static func sumRows(_ x: UnsafePointer<Float>, rows: Int, width: Int, into sums: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let r = x + i * width
            for j in 0..<width { sums[j] += r[j] }
        }
    }

    /// The M × M interatomic distances of `positions` (Å, Float64 rounded to Float32).
    package static func atomDistances(_ positions: [SIMD3<Double>]) -> [Float] {
        let M = positions.count
        var d = [Float](repeating: 0, count: M * M)
        for a in 0..<M { for b in 0..<M where b != a { d[a * M + b] = Float(GridField.distance(positions[a], positions[b])) } }
        return d
    }
}
