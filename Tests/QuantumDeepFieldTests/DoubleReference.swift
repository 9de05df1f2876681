import Foundation
import QuantumDeepField
import QDFFormats
import QDFDensity
import QDFReports

/// An independent, straightforward Float64 implementation of the QDF forward pass and
/// losses (docs/model.md §5–§8), written with plain loops from the spec. Tests use it to
/// check the engine's forward values and, by central differences in Float64, its
/// hand-written Float32 gradients.
struct DoubleReference {
    let model: QDFModel
    var p: [Double]

    init(_ model: QDFModel) {
        self.model = model
        p = model.parameters.map(Double.init)
    }

    func tensor(_ name: String) -> ArraySlice<Double> { p[model.layout[name]!.range] }

    /// ψ (N_f × dim) of one molecule.
    func orbitals(_ g: MoleculeGeometry) -> [[Double]] {
        let nf = g.fieldCount, no = g.orbitalCount, d = model.hyper.dim, M = g.atomCount
        let zeta = tensor("zeta.weight"), coef = tensor("coefficient.weight")
        let z0 = zeta.startIndex, c0 = coef.startIndex
        var phi = [[Double]](repeating: [Double](repeating: 0, count: no), count: nf)
        for i in 0..<nf {
            for k in 0..<no {
                let dist = Double(g.distances[i * M + Int(g.orbitalAtom[k])])
                let q = Int(g.orbitalQ[k])
                phi[i][k] = pow(dist, Double(q - 1)) * exp(-zeta[z0 + Int(g.orbitalType[k])] * dist * dist)
            }
        }
        for k in 0..<no {
            let n = max((0..<nf).reduce(0.0) { $0 + phi[$1][k] * phi[$1][k] }.squareRoot(), 1e-12)
            for i in 0..<nf { phi[i][k] /= n }
        }
        var c = [[Double]](repeating: [Double](repeating: 0, count: d), count: no)
        for k in 0..<no { for j in 0..<d { c[k][j] = coef[c0 + Int(g.orbitalType[k]) * d + j] } }
        if let env = model.hyper.environment {
            let delta = environmentTerm(g, env)
            for k in 0..<no { for j in 0..<d { c[k][j] += delta[k][j] } }
        }
        for j in 0..<d {
            let n = max((0..<no).reduce(0.0) { $0 + c[$1][j] * c[$1][j] }.squareRoot(), 1e-12)
            for k in 0..<no { c[k][j] /= n }
        }
        var psi = [[Double]](repeating: [Double](repeating: 0, count: d), count: nf)
        for i in 0..<nf { for j in 0..<d { var s = 0.0; for k in 0..<no { s += phi[i][k] * c[k][j] }; psi[i][j] = s } }
        let scale = (Double(g.electronCount) / Double(d)).squareRoot()
        for j in 0..<d {
            let n = max((0..<nf).reduce(0.0) { $0 + psi[$1][j] * psi[$1][j] }.squareRoot(), 1e-12)
            for i in 0..<nf { psi[i][j] *= scale / n }
        }
        return psi
    }

    /// The orbital environment's term of the coefficient rows (docs/model.md §18), N_o × dim,
    /// written from the equations with plain loops.
    func environmentTerm(_ g: MoleculeGeometry, _ sh: EnvironmentShape) -> [[Double]] {
        let M = g.atomCount, no = g.orbitalCount, d = model.hyper.dim, F = sh.features, K = sh.gaussians
        func matrix(_ name: String) -> [[Double]] {
            let t = tensor(name), cols = model.layout[name]!.shape[1]
            return (0..<(t.count / cols)).map { r in (0..<cols).map { t[t.startIndex + r * cols + $0] } }
        }
        func vector(_ name: String) -> [Double] { Array(tensor(name)) }
        func linear(_ x: [Double], _ w: [[Double]], _ b: [Double]?) -> [Double] {
            w.enumerated().map { o, row in zip(row, x).reduce(b?[o] ?? 0) { $0 + $1.0 * $1.1 } }
        }
        func ssp(_ v: Double) -> Double { log(0.5 * exp(v) + 0.5) }
        let spacing = sh.cutoff / Double(K - 1), gamma = 0.5 / (spacing * spacing)
        var firstType = [Int](repeating: -1, count: M)
        for k in 0..<no where firstType[Int(g.orbitalAtom[k])] < 0 { firstType[Int(g.orbitalAtom[k])] = Int(g.orbitalType[k]) }
        let embedding = matrix("environment.embedding.weight")
        var x = (0..<M).map { embedding[firstType[$0]] }
        for l in 0..<sh.layers {
            let f0 = matrix("environment.\(l).filter.0.weight"), b0 = vector("environment.\(l).filter.0.bias")
            let f1 = matrix("environment.\(l).filter.1.weight"), b1 = vector("environment.\(l).filter.1.bias")
            let v = matrix("environment.\(l).input.weight")
            let u0 = matrix("environment.\(l).update.0.weight"), c0 = vector("environment.\(l).update.0.bias")
            let u1 = matrix("environment.\(l).update.1.weight"), c1 = vector("environment.\(l).update.1.bias")
            let y = x.map { linear($0, v, nil) }
            var next = x
            for a in 0..<M {
                var m = [Double](repeating: 0, count: F)
                for b in 0..<M where b != a {
                    let r = Double(g.atomDistances[a * M + b])
                    guard r < sh.cutoff else { continue }
                    let e = (0..<K).map { exp(-gamma * pow(r - Double($0) * spacing, 2)) }
                    let w = linear(linear(e, f0, b0).map(ssp), f1, b1).map { $0 * 0.5 * (cos(Double.pi * r / sh.cutoff) + 1) }
                    for j in 0..<F { m[j] += y[b][j] * w[j] }
                }
                let update = linear(linear(m, u0, c0).map(ssp), u1, c1)
                for j in 0..<F { next[a][j] += update[j] }
            }
            x = next
        }
        let gate = matrix("environment.gate.weight"), out = matrix("environment.output.weight")
        return (0..<no).map { k in
            let z = (0..<F).map { x[Int(g.orbitalAtom[k])][$0] * gate[Int(g.orbitalType[k])][$0] }
            return (0..<d).map { j in (0..<F).reduce(0.0) { $0 + out[j][$1] * z[$1] } }
        }
    }

    func dense(_ x: [Double], _ w: String, _ b: String, relu: Bool) -> [Double] {
        let W = tensor(w), B = tensor(b)
        let out = B.count, inn = x.count
        return (0..<out).map { o in
            var s = B[B.startIndex + o]
            for i in 0..<inn { s += W[W.startIndex + o * inn + i] * x[i] }
            return relu ? max(s, 0) : s
        }
    }

    /// Ê for one molecule.
    func energy(_ g: MoleculeGeometry) -> [Double] {
        let h = model.hyper
        var rows = orbitals(g)
        for l in 0..<h.layerFunctional {
            if l == 0 && h.potentialFeatures > 0 {
                // The potential input (docs/model.md §19): z⁰_i += ξ_i W_vᵀ.
                let K = h.potentialFeatures, wv = tensor("W_functional_potential.weight"), w0 = wv.startIndex
                let spacing = 3.5 / Double(K - 1), gamma = 0.5 / (spacing * spacing)
                rows = rows.enumerated().map { i, row in
                    let u = log(1 + max(-Double(g.potential[i]), 0))
                    let xi = (0..<K).map { exp(-gamma * pow(u - Double($0) * spacing, 2)) }
                    let z = dense(row, "W_functional.0.weight", "W_functional.0.bias", relu: false)
                    var out = [Double](repeating: 0, count: h.dim)
                    for j in 0..<h.dim {
                        var t = z[j]
                        for k in 0..<K { t += wv[w0 + j * K + k] * xi[k] }
                        out[j] = max(t, 0)
                    }
                    return out
                }
                continue
            }
            rows = rows.map { dense($0, "W_functional.\(l).weight", "W_functional.\(l).bias", relu: true) }
        }
        var s = [Double](repeating: 0, count: h.dim)
        for r in rows { for j in 0..<h.dim { s[j] += r[j] } }
        if h.operation == .mean { s = s.map { $0 / Double(rows.count) } }
        return dense(s, "W_property.weight", "W_property.bias", relu: false)
    }

    /// V̂ at every field point of one molecule.
    func potential(_ g: MoleculeGeometry) -> [Double] {
        let h = model.hyper
        return orbitals(g).map { row in
            let rho = row.reduce(0) { $0 + $1 * $1 }
            var x = dense([rho], "W_density.weight", "W_density.bias", relu: false)
            for l in 0..<h.layerHK { x = dense(x, "W_HK.\(l).weight", "W_HK.\(l).bias", relu: true) }
            return dense(x, "W_potential.weight", "W_potential.bias", relu: false)[0]
        }
    }

    func lossE(_ batch: [MoleculeGeometry]) -> Double {
        var s = 0.0, n = 0
        for g in batch { for (e, t) in zip(energy(g), g.properties) { s += (e - Double(t)) * (e - Double(t)); n += 1 } }
        return s / Double(n)
    }

    /// Loss_V, plus w·Loss_ρ (docs/model.md §16) over the molecules with a density target:
    /// Σ_m Σ_i (N_f/N_e)|ρ_i − q_i| · w / (all grid points of the batch).
    /// With a `sample`: Σ over the rows it keeps of (V̂ − V)² / (f·N_f), plus the density term.
    func lossV(_ batch: [MoleculeGeometry], densityWeight w: Double = 0, sample: PotentialSample? = nil) -> Double {
        var s = 0.0, n = 0
        for g in batch {
            let key = sample?.moleculeKey(g.id) ?? 0
            for (i, (v, t)) in zip(potential(g), g.potential).enumerated() {
                n += 1
                if let sample, !sample.keeps(row: i, moleculeKey: key) { continue }
                s += (v - Double(t)) * (v - Double(t))
            }
        }
        if let sample { s /= sample.fraction }
        if w > 0 {
            for g in batch where !g.densityTarget.isEmpty {
                let rho = orbitals(g).map { $0.reduce(0) { $0 + $1 * $1 } }
                let f = Double(g.fieldCount) / Double(g.electronCount)
                for (r, q) in zip(rho, g.densityTarget) { s += w * f * abs(r - Double(q)) }
            }
        }
        return s / Double(n)
    }
}
