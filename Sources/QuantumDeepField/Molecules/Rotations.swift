#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Fixed rotations of a molecule, for averaging a prediction over orientations.
//
// QDF lays its grid out in the laboratory frame, so a rotated molecule gets a slightly
// different prediction (docs/model-card.md, "Orientation"). `MoleculeRotations.fixed(K)`
// are K documented rotations: the first is the identity (the input's orientation), the
// others are uniformly distributed rotations drawn by Shoemake's method (uniform unit
// quaternions, K. Shoemake, Graphics Gems III, 1992) from SplitMix64 seeded with
// 0x51D2_0201; they are the same on every machine and in every run. A molecule is
// rotated about the centroid of its atoms.

/// A rotation matrix, row-major: `rows[i]` is row i.
public struct Rotation: Sendable, Equatable {
    /// The three rows.
    public var rows: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)
    /// The identity.
    public static let identity = Rotation(quaternion: SIMD4(0, 0, 0, 1))

    /// The rotation of a unit quaternion (x, y, z, w).
    public init(quaternion q: SIMD4<Double>) {
        let (x, y, z, w) = (q.x, q.y, q.z, q.w)
        rows = (SIMD3(1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
                SIMD3(2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
                SIMD3(2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)))
    }
    /// R v.
    public func apply(_ v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3((rows.0 * v).sum(), (rows.1 * v).sum(), (rows.2 * v).sum())
    }
    public static func == (a: Rotation, b: Rotation) -> Bool { a.rows == b.rows }
}

/// The documented rotations used by `qdf predict --rotations K`.
public enum MoleculeRotations {
    /// K rotations: the identity, then K − 1 uniformly distributed ones from a fixed seed.
    public static func fixed(_ count: Int) -> [Rotation] {
        guard count > 0 else { return [] }
        var rng = SplitMix64(seed: 0x51D2_0201)
        func next() -> Double { rng.nextUnit() }
        var out = [Rotation.identity]
        while out.count < count {
            let u1 = next(), u2 = next(), u3 = next()
            let a = (1 - u1).squareRoot(), b = u1.squareRoot()
            out.append(Rotation(quaternion: SIMD4(a * sin(2 * .pi * u2), a * cos(2 * .pi * u2),
                                                  b * sin(2 * .pi * u3), b * cos(2 * .pi * u3))))
        }
        return out
    }
}

extension Molecule {
    /// The molecule rotated by `r` about the centroid of its atoms (id, properties and charges kept).
    public func rotated(by r: Rotation) -> Molecule {
        var c = SIMD3<Double>()
        for p in positions { c += p }
        c /= Double(max(1, atomCount))
        var m = self
        m.positions = positions.map { r.apply($0 - c) + c }
        return m
    }
}
