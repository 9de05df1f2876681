import Foundation
import QuantumDeepField
import QDFFormats

// The density on a cube grid, in e/bohr³.
//
// The model's ρ is a per-grid-point quantity (Σ over the field grid = N_e), not a
// density per volume. For a cube file it is scaled by one factor s per molecule, and,
// by default, the frozen atomic cores are added (AtomicCore.swift, docs/density.md):
//
//   total (default):  ρ_cube(r) = ρ_core(r) + s · ρ(r),  s = (N_e − N_core) / (Σ_grid ρ(r) · ΔV)
//   valence only:     ρ_cube(r) = s · ρ(r),              s = N_e / (Σ_grid ρ(r) · ΔV)
//
// (ΔV = voxel volume, bohr³). Orbital cubes carry sqrt(s) · ψ_j(r) (bohr^−3/2), so Σ_j of
// their squares is the cube's valence part.

/// What a density cube, profile or slice holds.
public enum DensityContent: String, Sendable, CaseIterable {
    /// The frozen 1s cores of the heavy atoms plus the model's density normalised to the
    /// remaining N_e − N_core electrons: the picture DFT gives (`qdf density`'s default).
    case total
    /// The model's own density, normalised to N_e (no cores).
    case valenceOnly = "valence-only"
}

public struct DensityCube: Sendable {
    /// ρ in e/bohr³ (its valence part integrates to N_e − N_core over the box; to N_e
    /// for `.valenceOnly`).
    public var density: CubeFile
    /// Chosen orbitals (0-based index, cube of sqrt(s)·ψ_j).
    public var orbitals: [(index: Int, cube: CubeFile)]
    /// s: e/bohr³ per model unit of ρ.
    public var scale: Double
    /// Σ ρ(r) ΔV before scaling (model units × bohr³).
    public var rawIntegral: Double
    /// What the cube holds, and the frozen cores added (nil for `.valenceOnly`).
    public var content: DensityContent
    public var cores: FrozenCores?
    /// Wall time and process CPU time (all threads) of the evaluation (s).
    public var seconds: Double
    public var cpuSeconds: Double

    /// Evaluates ρ (and the chosen 0-based orbitals) on `grid` (bohr).
    public static func compute(_ field: DensityField, grid: CubeGrid, orbitals: [Int] = [],
                               content: DensityContent) throws -> DensityCube {
        for j in orbitals where j < 0 || j >= field.orbitalCount {
            throw QDFError("orbital \(j + 1) does not exist: the model has \(field.orbitalCount) orbitals (1…\(field.orbitalCount))")
        }
        let t0 = Date(), c0 = processCPUSeconds()
        let (rho, psi) = field.evaluate(count: grid.pointCount, orbitals: orbitals) { grid.point($0) * angstromPerBohr }
        let cores = content == .total ? FrozenCores(field.molecule) : nil
        var coreValues = [Float]()
        if let c = cores, !c.isEmpty {
            coreValues = concurrentChunks(grid.pointCount, chunks: min(defaultWorkers, grid.pointCount / 4096)) { range in
                range.map { Float(c.density(bohr: grid.point($0))) }
            }
        }
        let seconds = Date().timeIntervalSince(t0), cpu = processCPUSeconds() - c0
        var sum = 0.0
        for v in rho { sum += Double(v) }
        let raw = sum * grid.voxelVolume
        guard raw > 0 else { throw QDFError("the density is zero everywhere on the grid; cannot normalize it") }
        let ne = field.electronCount, ncore = cores?.electronCount ?? 0
        let s = Double(ne - ncore) / raw
        let atoms = CubeFile.atoms(of: field.molecule)
        let fs = Float(s), rs = Float(s.squareRoot())
        let header: String
        let values: [Float]
        if coreValues.isEmpty {
            values = rho.map { $0 * fs }
        } else {
            values = zip(rho, coreValues).map { $0 * fs + $1 }
        }
        switch content {
        case .valenceOnly:
            header = String(format: "QDF electron density of %@ (e/bohr^3), scaled by %.6g so that its integral over the box is N_e = %d",
                            field.molecule.id, s, ne)
        case .total:
            header = String(format: "QDF total electron density of %@ (e/bohr^3): frozen 1s cores (%d e) + QDF density scaled by %.6g to N_e - N_core = %d e over the box",
                            field.molecule.id, ncore, s, ne - ncore)
        }
        let density = CubeFile(comments: [header, "qdf density: model \(field.model.metadata["source"] ?? "QDF"), x-major, then y, then z"],
                               grid: grid, atoms: atoms, values: values)
        let orbitalCubes = zip(orbitals, psi).map { j, values in
            (index: j, cube: CubeFile(comments: ["QDF molecular orbital \(j + 1) of \(field.molecule.id) (bohr^-3/2), scaled by sqrt(\(String(format: "%.6g", s)))",
                                                 "sum of squares over all \(field.orbitalCount) orbitals = the density cube's QDF (valence) part"],
                                      grid: grid, atoms: atoms, values: values.map { $0 * rs }))
        }
        return DensityCube(density: density, orbitals: orbitalCubes, scale: s, rawIntegral: raw, content: content,
                           cores: cores, seconds: seconds, cpuSeconds: cpu)
    }
}

/// ρ along the line through two atoms.
public struct DensityProfile: Sendable, Equatable {
    /// Distance from the first atom along the line towards the second (Å).
    public var s: [Double]
    /// ρ (e/bohr³ when the scale of a cube was applied).
    public var density: [Double]
    /// Distance between the two atoms (Å).
    public var bondLength: Double

    public init(s: [Double], density: [Double], bondLength: Double) {
        self.s = s
        self.density = density
        self.bondLength = bondLength
    }

    /// The points (Å) of a profile from `beyond` Å before a to `beyond` Å after b.
    public static func points(from a: SIMD3<Double>, to b: SIMD3<Double>, beyond: Double, count: Int) -> (s: [Double], points: [SIMD3<Double>]) {
        let L = ((b - a) * (b - a)).sum().squareRoot()
        let u = (b - a) / L
        let s = (0..<count).map { -beyond + (L + 2 * beyond) * Double($0) / Double(count - 1) }
        return (s, s.map { a + $0 * u })
    }

    /// The model's ρ along atoms a → b (0-based), times `scale`, plus the frozen cores
    /// when given (pass a cube's `scale` and `cores` to match it).
    public static func model(_ field: DensityField, atoms a: Int, _ b: Int, scale: Double, cores: FrozenCores?,
                             beyond: Double = 1, count: Int = 401) throws -> DensityProfile {
        let m = field.molecule
        try checkAtoms(a, b, atomCount: m.atomCount)
        let (s, pts) = points(from: m.positions[a], to: m.positions[b], beyond: beyond, count: count)
        let rho = field.density(at: pts)
        let core = cores?.density(angstrom: pts) ?? [Double](repeating: 0, count: pts.count)
        let L = ((m.positions[b] - m.positions[a]) * (m.positions[b] - m.positions[a])).sum().squareRoot()
        return DensityProfile(s: s, density: zip(rho, core).map { Double($0) * scale + $1 }, bondLength: L)
    }

    /// A cube's values along its atoms a → b (0-based), by trilinear interpolation;
    /// points outside the cube's box are NaN.
    public static func sample(_ cube: CubeFile, atoms a: Int, _ b: Int, beyond: Double = 1, count: Int = 401) throws -> DensityProfile {
        try checkAtoms(a, b, atomCount: cube.atoms.count)
        let pa = cube.atoms[a].position * angstromPerBohr, pb = cube.atoms[b].position * angstromPerBohr
        let (s, pts) = points(from: pa, to: pb, beyond: beyond, count: count)
        let values = pts.map { cube.interpolate($0 * bohrPerAngstrom).map(Double.init) ?? .nan }
        return DensityProfile(s: s, density: values, bondLength: ((pb - pa) * (pb - pa)).sum().squareRoot())
    }

    static func checkAtoms(_ a: Int, _ b: Int, atomCount: Int) throws {
        for x in [a, b] where x < 0 || x >= atomCount {
            throw QDFError("atom \(x + 1) does not exist: the molecule has \(atomCount) atoms (1…\(atomCount))")
        }
        if a == b { throw QDFError("a profile needs two different atoms (got \(a + 1) twice)") }
    }

    /// Local maxima (indices) whose topographic prominence (height above the higher of the
    /// two lowest points separating it from higher ground or the profile's ends) is at least
    /// `prominence` times their value; ripples of interpolation are ignored.
    public func peaks(prominence: Double = 0.01) -> [Int] {
        let v = density
        var out = [Int]()
        for i in 1..<max(1, v.count - 1) where !v[i].isNaN && v[i] > v[i - 1] && v[i] >= v[i + 1] {
            var leftMin = v[i], j = i - 1
            while j >= 0 && !(v[j] > v[i]) { if !v[j].isNaN { leftMin = min(leftMin, v[j]) }; j -= 1 }
            var rightMin = v[i], k = i + 1
            while k < v.count && !(v[k] > v[i]) { if !v[k].isNaN { rightMin = min(rightMin, v[k]) }; k += 1 }
            if v[i] - max(leftMin, rightMin) >= prominence * v[i] { out.append(i) }
        }
        return out
    }

    /// TSV text: a comment line, header `s_angstrom  rho_e_per_bohr3` (the reference's format).
    public func tsv(comment: String) -> String {
        var out = "# " + comment.replacingOccurrences(of: "\n", with: " ") + "\n"
        out += "s_angstrom\trho_e_per_bohr3\n"
        for (x, v) in zip(s, density) { out += String(format: "%.4f\t%.6e\n", x, v) }
        return out
    }

    /// Reads a profile TSV (comment lines starting with '#', a header, two numeric columns).
    public static func read(path: String) throws -> DensityProfile {
        let lines = try openLines(path)
        var s = [Double](), v = [Double](), header = false
        while let l = try lines.nextLine() {
            let t = l.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            let f = t.split(separator: "\t")
            if !header { header = true; if Double(f[0]) == nil { continue } }
            guard f.count >= 2, let a = Double(f[0]), let b = Double(f[1]) else {
                throw lines.error("expected two numbers 's  rho', found '\(t)'")
            }
            s.append(a); v.append(b)
        }
        guard s.count >= 2 else { throw QDFError("a profile needs at least two rows", file: path) }
        return DensityProfile(s: s, density: v, bondLength: .nan)
    }
}

/// A plane for a density slice: origin + x·u + y·v (Å, u ⟂ v unit vectors).
public struct DensityPlane: Sendable {
    public var origin: SIMD3<Double>
    public var u: SIMD3<Double>
    public var v: SIMD3<Double>
    public var normal: SIMD3<Double> { cross(u, v) }

    /// The plane through atoms a, b, c (0-based): u along a → b, origin at their centroid.
    public static func through(_ m: Molecule, atoms a: Int, _ b: Int, _ c: Int) throws -> DensityPlane {
        for x in [a, b, c] where x < 0 || x >= m.atomCount {
            throw QDFError("atom \(x + 1) does not exist: the molecule has \(m.atomCount) atoms (1…\(m.atomCount))")
        }
        let pa = m.positions[a], pb = m.positions[b], pc = m.positions[c]
        let u = normalize(pb - pa)
        let n = cross(pb - pa, pc - pa)
        guard (n * n).sum().squareRoot() > 1e-6 * max(1, ((pb - pa) * (pb - pa)).sum()) else {
            throw QDFError("atoms \(a + 1), \(b + 1), \(c + 1) are on one line: they do not define a plane")
        }
        let v = normalize(cross(normalize(n), u))
        return DensityPlane(origin: (pa + pb + pc) / 3, u: u, v: v)
    }

    /// The molecule's best plane: through the centroid, spanned by the two principal axes
    /// of the atom positions with the largest spread (least-squares plane).
    public static func best(_ m: Molecule) -> DensityPlane {
        let c = m.positions.reduce(SIMD3<Double>(), +) / Double(m.atomCount)
        var cov = [[Double]](repeating: [0, 0, 0], count: 3)
        for p in m.positions {
            let d = p - c
            for i in 0..<3 { for j in 0..<3 { cov[i][j] += d[i] * d[j] } }
        }
        let (values, vectors) = symmetricEigen3(cov)
        let order = (0..<3).sorted { values[$0] > values[$1] }
        var u = vectors[order[0]], v = vectors[order[1]]
        if m.atomCount < 3 || values[order[1]] < 1e-10 {
            // A line (or one atom): any plane containing it.
            u = m.atomCount < 2 || values[order[0]] < 1e-10 ? SIMD3(1, 0, 0) : u
            let helper: SIMD3<Double> = abs(u.x) < 0.9 ? SIMD3(1, 0, 0) : SIMD3(0, 1, 0)
            v = normalize(cross(cross(u, helper), u))
        }
        return DensityPlane(origin: c, u: normalize(u), v: normalize(cross(cross(u, v), u)))
    }

    /// In-plane coordinates (x, y) of a point and its distance from the plane (Å).
    public func project(_ p: SIMD3<Double>) -> (x: Double, y: Double, height: Double) {
        let d = p - origin
        return ((d * u).sum(), (d * v).sum(), (d * normal).sum())
    }

    public func point(x: Double, y: Double) -> SIMD3<Double> { origin + x * u + y * v }
}

@inline(__always) func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inline(__always) func normalize(_ a: SIMD3<Double>) -> SIMD3<Double> { a / (a * a).sum().squareRoot() }

/// Eigenvalues and eigenvectors of a symmetric 3×3 matrix (cyclic Jacobi rotations).
func symmetricEigen3(_ m: [[Double]]) -> (values: [Double], vectors: [SIMD3<Double>]) {
    var a = m
    var v: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    for _ in 0..<50 {
        var off = 0.0
        for i in 0..<3 { for j in (i + 1)..<3 { off += a[i][j] * a[i][j] } }
        if off < 1e-30 { break }
        for p in 0..<2 {
            for q in (p + 1)..<3 where abs(a[p][q]) > 1e-300 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<3 {
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq
                    a[k][q] = s * akp + c * akq
                }
                for k in 0..<3 {
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk
                    a[q][k] = s * apk + c * aqk
                }
                for k in 0..<3 {
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ([a[0][0], a[1][1], a[2][2]], (0..<3).map { j in SIMD3(v[0][j], v[1][j], v[2][j]) })
}

/// How a density cube compares with a reference cube (e.g. from DFT).
public struct DensityComparison: Sendable {
    /// ∫|ρ − ρ_ref| dV over the compared points (e).
    public var integratedAbsoluteDifference: Double
    /// The same divided by N_e.
    public var relativeDifference: Double
    /// max |ρ − ρ_ref| (e/bohr³) and where it occurs (bohr).
    public var maxDeviation: Double
    public var maxDeviationAt: SIMD3<Double>
    /// Pearson correlation of ρ and ρ_ref over the compared points.
    public var pearson: Double
    /// Points of the first cube compared, and the fraction of its points inside the reference's box.
    public var points: Int
    public var coverage: Double
    /// True when both cubes share one grid (no resampling).
    public var sameGrid: Bool
    /// N_e (from the first cube's atoms) and both integrals over the compared points.
    public var electronCount: Int
    public var integral: Double
    public var referenceIntegral: Double

    /// Compares `cube` with `reference` on `cube`'s grid; the reference is resampled
    /// trilinearly when the grids differ (points outside its box are left out). Points
    /// closer than `excludingCores` bohr to an atom of `cube` are left out too (0: none),
    /// to compare the valence region without the nuclear cusps.
    public static func compare(_ cube: CubeFile, reference: CubeFile, excludingCores radius: Double = 0) throws -> DensityComparison {
        let r2 = radius * radius
        let centres = cube.atoms.map(\.position)
        return try compare(cube, reference: reference) { p in
            r2 == 0 || !centres.contains(where: { (($0 - p) * ($0 - p)).sum() < r2 })
        }
    }

    /// The comparison split into the core region (points closer than `coreRadius` bohr to
    /// a nucleus heavier than He) and the valence region (all other points). The two
    /// regions' ∫|Δρ| / N_e add up to the whole cube's.
    public static func regions(_ cube: CubeFile, reference: CubeFile, coreRadius: Double) throws
        -> (core: DensityComparison, valence: DensityComparison) {
        let r2 = coreRadius * coreRadius
        let heavy = cube.atoms.filter { $0.atomicNumber > 2 }.map(\.position)
        let inCore = { (p: SIMD3<Double>) in heavy.contains(where: { (($0 - p) * ($0 - p)).sum() < r2 }) }
        return (try compare(cube, reference: reference, where: inCore),
                try compare(cube, reference: reference, where: { !inCore($0) }))
    }

    /// Compares at the points of `cube`'s grid for which `include` (position in bohr) holds.
    public static func compare(_ cube: CubeFile, reference: CubeFile, where include: (SIMD3<Double>) -> Bool) throws -> DensityComparison {
        let g = cube.grid, rg = reference.grid
        let same = g.counts == rg.counts && maxAbs(g.origin - rg.origin) < 1e-5
            && (0..<3).allSatisfy { maxAbs(g.axes[$0] - rg.axes[$0]) < 1e-6 }
        var n = 0, sa = 0.0, sb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0, absDiff = 0.0, maxDev = -1.0
        var maxAt = SIMD3<Double>()
        for i in 0..<g.pointCount {
            if !include(g.point(i)) { continue }
            let a = Double(cube.values[i])
            let b: Double
            if same { b = Double(reference.values[i]) }
            else if let x = reference.interpolate(g.point(i)) { b = Double(x) }
            else { continue }
            n += 1
            sa += a; sb += b; saa += a * a; sbb += b * b; sab += a * b
            let d = abs(a - b)
            absDiff += d
            if d > maxDev { maxDev = d; maxAt = g.point(i) }
        }
        guard n > 1 else { throw QDFError("the two cubes' boxes do not overlap: nothing to compare") }
        let dv = g.voxelVolume
        let N = Double(n)
        let cov = sab - sa * sb / N, va = saa - sa * sa / N, vb = sbb - sb * sb / N
        let ne = cube.electronCount
        return DensityComparison(integratedAbsoluteDifference: absDiff * dv,
                                 relativeDifference: absDiff * dv / Double(max(ne, 1)),
                                 maxDeviation: maxDev, maxDeviationAt: maxAt,
                                 pearson: va > 0 && vb > 0 ? cov / (va * vb).squareRoot() : .nan,
                                 points: n, coverage: N / Double(g.pointCount), sameGrid: same,
                                 electronCount: ne, integral: sa * dv, referenceIntegral: sb * dv)
    }

    private static func maxAbs(_ v: SIMD3<Double>) -> Double { max(abs(v.x), abs(v.y), abs(v.z)) }
}
