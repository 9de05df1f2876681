import Foundation

// Frozen atomic cores (docs/density.md).
//
// QDF's grid never comes within 0.26 Å of a nucleus, so the model's density has no core:
// at a carbon nucleus it is ≈ 0.3 e/bohr³ where DFT gives ≈ 116. The total density is
// written as
//
//   ρ(r) = ρ_core(r) + ρ_valence(r),   ρ_core(r) = Σ_heavy atoms a  2 φ_1s,Z(a)(|r − R_a|)²
//
// with φ_1s a fixed, spherically symmetric 1s orbital per element (Li–Ne) and ρ_valence the
// model's density normalised to N_e − N_core. φ_1s comes from a spherically averaged
// B3LYP/6-31G(2df,p) atom (QM9's level), expanded over the basis's primitive s Gaussians
// (AtomicCoreTable.swift, written by scripts/density/atomic_cores.py), so ρ_core is
// analytic: exact at any point and integrating to 2 per heavy atom.

/// Frozen 1s² cores of the elements Li–Ne: 2 φ_1s(r)², tabulated per element.
public enum AtomicCore {
    /// Electrons in the frozen core of element `z`: 2 (1s²) for Li–Ne, 0 for H and He,
    /// nil where the table has no core (Na and beyond; their cores stay in the valence).
    public static func electrons(_ z: Int) -> Int? {
        if z <= 2 { return 0 }
        return table[z] == nil ? nil : 2
    }

    /// The 1s orbital of element `z` as primitive Gaussians (α in bohr⁻², d), or nil.
    public static func orbital(_ z: Int) -> (exponents: [Double], coefficients: [Double])? { table[z] }

    /// ρ_core of one atom of element `z` at squared distance `r2` (bohr²), in e/bohr³
    /// (0 for elements without a core).
    public static func density(_ z: Int, r2: Double) -> Double {
        guard let o = table[z] else { return 0 }
        return density(exponents: o.exponents, coefficients: o.coefficients, r2: r2)
    }

    /// 2 φ(r)², φ = Σ_p d_p exp(−α_p r²), at squared distance `r2` (bohr²).
    @inline(__always)
    static func density(exponents: [Double], coefficients: [Double], r2: Double) -> Double {
        var phi = 0.0
        for q in exponents.indices { phi += coefficients[q] * exp(-exponents[q] * r2) }
        return 2 * phi * phi
    }
}

/// The frozen cores of one molecule: ρ_core anywhere, and N_core.
public struct FrozenCores: Sendable {
    /// N_core: the electrons in the frozen cores.
    public let electronCount: Int
    /// Elements of the molecule heavier than He without a tabulated core (their cores stay
    /// in the valence density), as symbols.
    public let uncoveredElements: [String]
    // Per cored atom: its centre (bohr), exponents and coefficients, and the squared
    // distance beyond which its density is below 1e-14 e/bohr³ (skipped).
    private let centres: [SIMD3<Double>]
    private let exponents: [[Double]]
    private let coefficients: [[Double]]
    private let cutoff2: [Double]

    public init(_ molecule: Molecule) {
        var n = 0, uncovered = Set<Int>()
        var c = [SIMD3<Double>](), e = [[Double]](), d = [[Double]](), cut = [Double]()
        for (z, p) in zip(molecule.atomicNumbers, molecule.positions) {
            guard let k = AtomicCore.electrons(z) else { uncovered.insert(z); continue }
            guard k > 0, let o = AtomicCore.orbital(z) else { continue }
            n += k
            c.append(p * bohrPerAngstrom); e.append(o.exponents); d.append(o.coefficients)
            // |φ| ≤ Σ|d_p| exp(−α_min r²): the density is below 1e-14 beyond that r.
            let bound = o.coefficients.reduce(0) { $0 + abs($1) }, amin = o.exponents.min()!
            cut.append(max(0, log(2 * bound * bound / 1e-14) / (2 * amin)))
        }
        electronCount = n
        uncoveredElements = uncovered.sorted().map(Element.symbol)
        centres = c; exponents = e; coefficients = d; cutoff2 = cut
    }

    /// True when the molecule has no frozen core (only H/He, or elements without a table).
    public var isEmpty: Bool { centres.isEmpty }

    /// ρ_core at a point given in bohr (e/bohr³).
    public func density(bohr p: SIMD3<Double>) -> Double {
        var rho = 0.0
        for a in centres.indices {
            let v = p - centres[a], r2 = (v * v).sum()
            if r2 > cutoff2[a] { continue }
            rho += AtomicCore.density(exponents: exponents[a], coefficients: coefficients[a], r2: r2)
        }
        return rho
    }

    /// ρ_core at points given in ångström (e/bohr³).
    public func density(angstrom points: [SIMD3<Double>]) -> [Double] {
        points.map { density(bohr: $0 * bohrPerAngstrom) }
    }
}
