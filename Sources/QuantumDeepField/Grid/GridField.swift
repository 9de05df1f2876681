import Foundation

// The grid field (docs/model.md §2) and distances/potential (§4).
//
// One sphere of grid points sits on every atom; a molecule of M atoms has
// N_f = |S|·M points (56·M at the defaults). Everything is computed in Double, as
// the reference does in numpy, and rounded to Float once.

/// The grid field's geometry in Float64 (docs/model.md §2) and the distance and potential
/// rules of §4. All lengths in ångström.
public enum GridField {
    /// numpy.arange(-r, r + 1e-3, h), reproduced exactly (numpy fills a[i] = start + i·delta
    /// with delta = (start + step) − start). `r` and `h` in Å; empty if no point fits.
    public static func axis(radius r: Double, interval h: Double) -> [Double] {
        let start = -r, stop = r + 1e-3
        let n = Int(((stop - start) / h).rounded(.up))
        guard n > 0 else { return [] }
        let delta = (start + h) - start
        return (0..<n).map { $0 == 0 ? start : start + Double($0) * delta }
    }

    /// The sphere S of grid offsets (Å) in x-major, then y, then z order, without the origin:
    /// the points of `axis`³ with x² + y² + z² ≤ r² (§2; 56 points at r = 0.75, h = 0.3).
    public static func sphere(radius r: Double, interval h: Double) -> [SIMD3<Double>] {
        let a = axis(radius: r, interval: h)
        var out = [SIMD3<Double>]()
        for x in a { for y in a { for z in a {
            if x * x + y * y + z * z <= r * r && !(x == 0 && y == 0 && z == 0) {
                out.append(SIMD3(x, y, z))
            }
        } } }
        return out
    }

    /// d(p, c) = |p − c| in Å with the reference's rule: a distance of exactly 0 becomes 1e6
    /// (docs/model.md §4).
    @inline(__always)
    public static func distance(_ p: SIMD3<Double>, _ c: SIMD3<Double>) -> Double {
        let v = p - c
        let d = (v * v).sum().squareRoot()
        return d == 0 ? 1e6 : d
    }

    /// The Gaussian external potential V(p) = −Σ_a Z_a exp(−d(p, a)²) at a point p in Å, with
    /// d in Å as is and the zero rule of `distance` (docs/model.md §4).
    public static func potential(at p: SIMD3<Double>, molecule: Molecule) -> Double {
        var v = 0.0
        for a in 0..<molecule.atomCount {
            let d = distance(p, molecule.positions[a])
            v -= Double(molecule.atomicNumbers[a]) * exp(-d * d)
        }
        return v
    }
}

/// Everything about one molecule that does not depend on learned parameters:
/// its field points' distances to the atoms, its basis functions, and (for training)
/// the external potential on the field. Computed once, reused across epochs.
/// An immutable value; `Sendable`, safe to share between threads.
public struct MoleculeGeometry: Sendable {
    /// The molecule's id.
    public let id: String
    /// M, the number of atoms.
    public let atomCount: Int
    /// N_f: grid points (|S| per atom).
    public let fieldCount: Int
    /// N_o: basis functions.
    public let orbitalCount: Int
    /// N_e = Σ Z_a, electrons of the neutral molecule.
    public let electronCount: Int
    /// The molecule's basis functions (atom, dictionary row, q of each).
    public let basis: BasisLayout
    /// For each basis function (N_o entries): its atom (`basis.atom`).
    public var orbitalAtom: [Int32] { basis.atom }
    /// For each basis function: its orbital-dictionary index t(k) (`basis.type`).
    public var orbitalType: [Int32] { basis.type }
    /// For each basis function: its q (`basis.q`).
    public var orbitalQ: [Int32] { basis.q }
    /// N_f × M distances in Å from field point i to atom a, row-major (Float32 rounded from
    /// Float64, zero rule applied; docs/model.md §4).
    public let distances: [Float]
    /// M × M interatomic distances in Å, row-major (Float32 rounded from Float64), for the
    /// orbital environment (docs/model.md §18).
    public let atomDistances: [Float]
    /// N_f external potential values V_i (§4; empty unless requested).
    public let potential: [Float]
    /// The molecule's P property values in its data set's unit, as Float32 (may be empty).
    public let properties: [Float]
    /// P values added to the model's output for this molecule (its element baseline), or
    /// empty when the model has none.
    public let outputOffset: [Float]
    /// The density target q_i on the field grid for density supervision (docs/model.md §16;
    /// N_f values summing to N_e, model units), or empty.
    public var densityTarget: [Float] = []
    /// The field points relative to the centre of nuclear charge, the nuclear dipole and the
    /// core fraction, for a model with the dipole readout (docs/model.md §20); nil otherwise.
    package var dipoleFrame: DipoleReadout.Frame? = nil

    /// Builds the geometry of `molecule` on the field of `sphere` (offsets in Å, see
    /// `GridField.sphere`), with the external potential if `withPotential`. Throws `QDFError`
    /// (no file/line) if `dictionary` lacks one of the molecule's orbitals under `basis`.
    public init(molecule m: Molecule, sphere: [SIMD3<Double>], basis: BasisSet,
                dictionary: OrbitalDictionary, withPotential: Bool, outputOffset: [Float] = []) throws {
        self.outputOffset = outputOffset
        id = m.id
        atomCount = m.atomCount
        fieldCount = sphere.count * m.atomCount
        electronCount = m.electronCount
        self.basis = try BasisLayout(molecule: m, basis: basis, dictionary: dictionary)
        orbitalCount = self.basis.count
        let M = m.atomCount
        var d = [Float](repeating: 0, count: fieldCount * M)
        var v = [Float](repeating: 0, count: withPotential ? fieldCount : 0)
        var i = 0
        for a in 0..<M {
            let center = m.positions[a]
            for s in sphere {
                let p = s + center
                var pot = 0.0
                for b in 0..<M {
                    let dist = GridField.distance(p, m.positions[b])
                    d[i * M + b] = Float(dist)
                    if withPotential { pot -= Double(m.atomicNumbers[b]) * exp(-dist * dist) }
                }
                if withPotential { v[i] = Float(pot) }
                i += 1
            }
        }
        distances = d
        potential = v
        atomDistances = OrbitalEnvironment.atomDistances(m.positions)
        properties = m.properties.map(Float.init)
    }

    /// Approximate bytes held by this geometry (its arrays plus a fixed 128; for memory budgets).
    public var byteCount: Int { 4 * (distances.count + atomDistances.count + potential.count + densityTarget.count + 3 * orbitalCount + properties.count) + 24 * (dipoleFrame?.points.count ?? 0) + 128 }
}
