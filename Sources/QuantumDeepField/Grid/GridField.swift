import Foundation

// The grid field (spec section 2) and distances/potential (section 4).
//
// One sphere of grid points sits on every atom; a molecule of M atoms has
// N_f = |S|·M points (56·M at the defaults). Everything is computed in Double, as
// the reference does in numpy, and rounded to Float once.

public enum GridField {
    /// numpy.arange(-r, r + 1e-3, h), reproduced exactly (numpy fills a[i] = start + i·delta
    /// with delta = (start + step) − start).
    public static func axis(radius r: Double, interval h: Double) -> [Double] {
        let start = -r, stop = r + 1e-3
        let n = Int(((stop - start) / h).rounded(.up))
        guard n > 0 else { return [] }
        let delta = (start + h) - start
        return (0..<n).map { $0 == 0 ? start : start + Double($0) * delta }
    }

    /// The sphere S of grid offsets in x-major, then y, then z order, without the origin.
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

    /// d(p, c) with the reference's rule: a distance of exactly 0 becomes 1e6.
    @inline(__always)
    public static func distance(_ p: SIMD3<Double>, _ c: SIMD3<Double>) -> Double {
        let v = p - c
        let d = (v * v).sum().squareRoot()
        return d == 0 ? 1e6 : d
    }

    /// The Gaussian external potential V(p) = −Σ_a Z_a exp(−d(p, a)²).
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
public struct MoleculeGeometry: Sendable {
    public let id: String
    public let atomCount: Int
    /// N_f: grid points (|S| per atom).
    public let fieldCount: Int
    /// N_o: basis functions.
    public let orbitalCount: Int
    /// N_e.
    public let electronCount: Int
    /// For each basis function: its atom, its orbital-dictionary index, its q.
    public let orbitalAtom: [Int32]
    public let orbitalType: [Int32]
    public let orbitalQ: [Int32]
    /// N_f × M distances from field point i to atom a (Float, zero rule applied).
    public let distances: [Float]
    /// N_f external potential values (empty unless requested).
    public let potential: [Float]
    /// Property values (may be empty).
    public let properties: [Float]

    public init(molecule m: Molecule, sphere: [SIMD3<Double>], basis: BasisSet,
                dictionary: OrbitalDictionary, withPotential: Bool) throws {
        id = m.id
        atomCount = m.atomCount
        fieldCount = sphere.count * m.atomCount
        electronCount = m.electronCount
        var atom = [Int32](), type = [Int32](), q = [Int32]()
        for (a, z) in m.atomicNumbers.enumerated() {
            for f in basis.functions(atomicNumber: z) {
                guard let t = dictionary[f.name] else {
                    throw QDFError(dictionary.refusal(m, basis: basis) ?? "molecule '\(m.id)': unknown orbital \(f.name)")
                }
                atom.append(Int32(a)); type.append(Int32(t)); q.append(Int32(f.q))
            }
        }
        orbitalAtom = atom; orbitalType = type; orbitalQ = q
        orbitalCount = atom.count
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
        properties = m.properties.map(Float.init)
    }

    /// Bytes held by this geometry (for memory budgets).
    public var byteCount: Int { 4 * (distances.count + potential.count + 3 * orbitalCount + properties.count) + 128 }
}
