// The canonical molecular frame (docs/model.md §17).
//
// QDF samples its basis functions on grid points laid out along the x, y, z axes around
// each atom, so a model's prediction depends on how the molecule is turned. A model that
// works in the canonical frame first moves every molecule into a frame defined by the
// molecule alone:
//
//   origin   c = Σ Z_a R_a / Σ Z_a                        (centre of nuclear charge)
//   moments  M = Σ Z_a p_a p_aᵀ,  p_a = R_a − c           (second moment of the charges)
//   axes     the eigenvectors of M, largest spread first (x, y, z)
//   signs    each axis e points where the third moment Σ Z_a (e·p_a)³ is positive
//
// The frame may be a reflection (det −1): every property QDF predicts is the same for a
// molecule and its mirror image, so nothing is lost and reflections come for free.
//
// Where this is not defined, the atoms define it:
//   - Two principal moments within `FrameTolerances.moment` of each other (relative to the
//     largest): the axes in their plane are arbitrary. The in-plane x axis is taken through
//     an atom: among the atoms at least `direction` Å from the unique axis, the heaviest
//     element, and of those the farthest from the axis. All three equal (spherical tops such
//     as CH4): x through such an atom (farthest from the centre), y through the next, in the
//     plane perpendicular to x.
//   - A third moment within `FrameTolerances.thirdMoment` of zero (relative to Σ Z |e·p|³):
//     both signs are kept.
//   - Atoms tied for the choice above (same element, distances within `FrameTolerances.tie`):
//     each gives a frame.
//   - Atoms on the axis (linear molecules): the remaining axes are any perpendicular pair;
//     every choice places the atoms at the same coordinates.
// Of the frames these choices leave, those that place the same elements at the same
// coordinates (within `FrameTolerances.duplicate` Å, in any atom order) are one frame: a
// symmetric molecule (benzene, NH3, CH4, a mirror plane) ends with one. `frames(of:)`
// returns the distinct frames in a fixed order (by `orderKey`, which does not depend on the
// input's orientation or atom order); a model predicts in the first (`canonical(_:)`), or
// averages over all of them (`Predictor.frameAveraging`).

/// How a model places a molecule before predicting (`frame` in the model file's metadata).
public enum FrameKind: String, Sendable, CaseIterable {
    /// As the input gives it (the reference recipe and the published model).
    case input
    /// In the molecule's canonical frame (`MoleculeFrame`), whatever its orientation.
    case canonical
}

/// The tolerances of the canonical frame (docs/model.md §17).
public struct FrameTolerances: Sendable, Equatable {
    /// Relative gap below which two principal moments count as equal: (λ_i − λ_j)/λ_1.
    public var moment = 1e-2
    /// |Σ Z t³| / Σ Z |t|³ below which an axis' sign is undecided and both are kept.
    public var thirdMoment = 1e-3
    /// Atoms closer than this to an axis (Å) do not define a direction around it.
    public var direction = 0.05
    /// Distances (Å) within this of the largest tie for the choice of a direction atom.
    public var tie = 1e-2
    /// Frames that place the atoms within this (Å) of each other are the same frame.
    public var duplicate = 1e-3
    /// At most this many candidate frames are formed (a molecule with more symmetry than
    /// any in QM9, e.g. C60, keeps the first ones).
    public var maxCandidates = 512

    /// The defaults above.
    public init() {}
}

/// A molecule's frame: an origin and three orthonormal axes (a rotation, possibly with a
/// reflection). Coordinates in the frame are u = A (r − origin), with `axes.rows` the
/// frame's x, y, z axes in input coordinates; back: r = Aᵀ u + origin.
public struct MoleculeFrame: Sendable, Equatable {
    /// The frame's origin in input coordinates (Å).
    public var origin: SIMD3<Double>
    /// The frame's axes as the rows of an orthogonal matrix (det ±1).
    public var axes: Rotation

    /// The identity frame (input coordinates).
    public static let identity = MoleculeFrame(origin: .zero, axes: .identity)

    /// A frame with the given origin and axes (rows orthonormal; not checked).
    public init(origin: SIMD3<Double>, axes: Rotation) {
        self.origin = origin
        self.axes = axes
    }

    /// Input coordinates → frame coordinates: A (r − origin).
    public func toFrame(_ r: SIMD3<Double>) -> SIMD3<Double> { axes.apply(r - origin) }

    /// Frame coordinates → input coordinates: Aᵀ u + origin.
    public func fromFrame(_ u: SIMD3<Double>) -> SIMD3<Double> {
        axes.rows.0 * u.x + axes.rows.1 * u.y + axes.rows.2 * u.z + origin
    }

    /// True if the frame includes a reflection (det A = −1).
    public var isReflection: Bool { axes.determinant < 0 }

    /// The molecule with its positions in this frame (everything else kept).
    public func place(_ m: Molecule) -> Molecule {
        var out = m
        out.positions = m.positions.map(toFrame)
        return out
    }

    /// The first of `frames(of:)`: the frame a model trained in the canonical frame uses.
    public static func canonical(_ m: Molecule, tolerances: FrameTolerances = FrameTolerances()) -> MoleculeFrame {
        frames(of: m, tolerances: tolerances)[0]
    }

    /// The distinct canonical frames of a molecule (at least one), in a fixed order that
    /// depends on neither the input's orientation nor its atom order (see the file's comment).
    public static func frames(of m: Molecule, tolerances t: FrameTolerances = FrameTolerances()) -> [MoleculeFrame] {
        analyze(m, tolerances: t).frames
    }

    /// The canonical frames of a molecule with how they were decided (`qdf check` shows it).
    public static func analyze(_ m: Molecule, tolerances t: FrameTolerances = FrameTolerances()) -> FrameAnalysis {
        let n = m.atomCount
        guard n > 0 else { return FrameAnalysis(frames: [.identity], shape: .point, moments: [0, 0, 0], undecided: [], candidates: 1) }
        let w = m.atomicNumbers.map { Double(max($0, 1)) }
        let total = w.reduce(0, +)
        var c = SIMD3<Double>()
        for a in 0..<n { c += w[a] * m.positions[a] }
        c /= total
        let p = m.positions.map { $0 - c }
        guard p.contains(where: { ($0 * $0).sum() > t.direction * t.direction }) else {
            return FrameAnalysis(frames: [MoleculeFrame(origin: c, axes: .identity)], shape: .point, moments: [0, 0, 0],
                                 undecided: [], candidates: 1)
        }
        var moments = [Double](repeating: 0, count: 9)
        for a in 0..<n {
            for i in 0..<3 { for j in 0..<3 { moments[3 * i + j] += w[a] * p[a][i] * p[a][j] } }
        }
        let (lambda, e) = symmetricEigen3(moments)
        let scale = max(lambda[0], .leastNormalMagnitude)
        let tied01 = (lambda[0] - lambda[1]) / scale < t.moment
        let tied12 = (lambda[1] - lambda[2]) / scale < t.moment

        // Partial frames grow axis by axis; each step may branch.
        var candidates = [[SIMD3<Double>]]()
        var undecided = Set<Int>()
        /// The sign(s) of the axis in slot `axis` (0, 1, 2 for x, y, z).
        func signs(_ v: SIMD3<Double>, axis: Int) -> [Double] {
            var s = 0.0, a = 0.0
            for k in 0..<n { let x = (v * p[k]).sum(); s += w[k] * x * x * x; a += w[k] * abs(x * x * x) }
            if a == 0 || abs(s) < t.thirdMoment * a { undecided.insert(axis); return [1, -1] }
            return [s > 0 ? 1 : -1]
        }
        /// Unit directions through the chosen atoms, perpendicular to `normal` (or from the
        /// centre when `normal` is nil); empty when every atom is on the axis.
        func atomDirections(perpendicularTo normal: SIMD3<Double>?) -> [SIMD3<Double>] {
            var best: (z: Int, r: Double)? = nil
            var q = [SIMD3<Double>](repeating: .zero, count: n), r = [Double](repeating: 0, count: n)
            for k in 0..<n {
                var v = p[k]
                if let u = normal { v -= (u * v).sum() * u }
                q[k] = v; r[k] = (v * v).sum().squareRoot()
                guard r[k] >= t.direction else { continue }
                let z = m.atomicNumbers[k]
                if best == nil || z > best!.z || (z == best!.z && r[k] > best!.r) { best = (z, r[k]) }
            }
            guard let b = best else { return [] }
            return (0..<n).filter { m.atomicNumbers[$0] == b.z && r[$0] >= t.direction && r[$0] >= b.r - t.tie }
                .map { q[$0] / r[$0] }
        }
        func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
        }
        func unit(_ v: SIMD3<Double>) -> SIMD3<Double> { v / (v * v).sum().squareRoot() }
        /// Any unit vector perpendicular to `u` (deterministic in u).
        func perpendicular(_ u: SIMD3<Double>) -> SIMD3<Double> {
            let a = abs(u.x) < 0.9 ? SIMD3<Double>(1, 0, 0) : SIMD3<Double>(0, 1, 0)
            return unit(cross(u, a))
        }
        /// Completes x, y to a frame with z = ±(x × y), the sign by z's third moment.
        func withZ(_ x: SIMD3<Double>, _ y: SIMD3<Double>) -> [[SIMD3<Double>]] {
            let z = cross(x, y)
            return signs(z, axis: 2).map { [x, y, $0 * z] }
        }
        /// x given: y through an atom around x (any perpendicular if none), then z.
        func fromX(_ x: SIMD3<Double>) -> [[SIMD3<Double>]] {
            var ys = atomDirections(perpendicularTo: x)
            if ys.isEmpty { ys = [perpendicular(x)] }
            return ys.flatMap { withZ(x, $0) }
        }

        switch (tied01, tied12) {
        case (false, false):
            // x, y, z = e1, e2, e3, each with its sign(s).
            for sx in signs(e[0], axis: 0) { for sy in signs(e[1], axis: 1) { for sz in signs(e[2], axis: 2) {
                candidates.append([sx * e[0], sy * e[1], sz * e[2]])
            }}}
        case (false, true):
            // Prolate (or linear): x = ±e1; y through an atom around x.
            for sx in signs(e[0], axis: 0) { candidates += fromX(sx * e[0]) }
        case (true, false):
            // Oblate (benzene, planar symmetric tops): z = ±e3; x through an atom around z.
            for sz in signs(e[2], axis: 2) {
                let z = sz * e[2]
                var xs = atomDirections(perpendicularTo: z)
                if xs.isEmpty { xs = [e[0]] }
                for x in xs {
                    let y = cross(z, x)
                    for sy in signs(y, axis: 1) { candidates.append([x, sy * y, z]) }
                }
            }
        case (true, true):
            // Spherical top (CH4, adamantane): x through an atom, y around it, z = ±(x × y).
            var xs = atomDirections(perpendicularTo: nil)
            if xs.isEmpty { xs = [e[0]] }
            for x in xs { candidates += fromX(x) }
        }
        let formed = candidates.count
        if candidates.count > t.maxCandidates { candidates.removeLast(candidates.count - t.maxCandidates) }

        // Frame coordinates of every candidate; drop those that repeat an earlier one.
        var kept = [(frame: MoleculeFrame, coordinates: [SIMD3<Double>], key: Double)]()
        for axes in candidates {
            let f = MoleculeFrame(origin: c, axes: Rotation(rows: (axes[0], axes[1], axes[2])))
            let u = p.map { f.axes.apply($0) }
            let key = orderKey(u, numbers: m.atomicNumbers)
            // Of frames that repeat each other, the one with the larger key stays, so that the
            // choice does not depend on the order the candidates were formed in.
            if let i = kept.firstIndex(where: { sameCoordinates($0.coordinates, u, numbers: m.atomicNumbers, tolerance: t.duplicate) }) {
                if key > kept[i].key { kept[i] = (f, u, key) }
                continue
            }
            kept.append((f, u, key))
        }
        kept.sort { $0.key > $1.key }
        let shape: FrameAnalysis.Shape = switch (tied01, tied12) {
        case (false, false): .distinct
        case (false, true): .prolate
        case (true, false): .oblate
        case (true, true): .spherical
        }
        return FrameAnalysis(frames: kept.map(\.frame), shape: shape, moments: lambda, undecided: undecided.sorted(),
                             candidates: formed)
    }

    /// A number that orders a molecule's frames independently of its orientation and atom
    /// order: Σ Z_a h(u_a) with h odd in each axis' sign and distinct across axes.
    static func orderKey(_ u: [SIMD3<Double>], numbers: [Int]) -> Double {
        var k = 0.0
        for (a, v) in u.enumerated() {
            let z = Double(numbers[a])
            k += z * (v.x * v.y * v.z + 0.5 * v.x * v.y + 0.25 * v.y * v.z + 0.125 * v.x * v.z
                      + 0.0625 * v.x * v.x * v.x + 0.03125 * v.y * v.y * v.y + 0.015625 * v.z * v.z * v.z)
        }
        return k
    }

    /// True if the two coordinate lists place the same elements at the same points within
    /// `tolerance` (Å), in some atom order (greedy matching: atoms are ≥ 0.5 Å apart).
    static func sameCoordinates(_ a: [SIMD3<Double>], _ b: [SIMD3<Double>], numbers: [Int], tolerance: Double) -> Bool {
        var used = [Bool](repeating: false, count: b.count)
        let t2 = tolerance * tolerance
        outer: for i in a.indices {
            for j in b.indices where !used[j] && numbers[j] == numbers[i] {
                let d = a[i] - b[j]
                if (d * d).sum() <= t2 { used[j] = true; continue outer }
            }
            return false
        }
        return true
    }
}

/// How a molecule's canonical frames were decided.
public struct FrameAnalysis: Sendable {
    /// The kinds of principal moments (`FrameTolerances.moment` decides equality).
    public enum Shape: String, Sendable {
        /// One atom, or every atom at the centre.
        case point
        /// Three distinct moments: the axes are the principal axes.
        case distinct
        /// λ1 ≈ λ2 > λ3 (e.g. benzene): z is the unique axis, x through an atom.
        case oblate
        /// λ1 > λ2 ≈ λ3 (e.g. linear molecules): x is the unique axis, y through an atom.
        case prolate
        /// λ1 ≈ λ2 ≈ λ3 (e.g. CH4): x and y through atoms.
        case spherical
    }
    /// The distinct frames, first the one a model trains and predicts in.
    public var frames: [MoleculeFrame]
    /// The principal-moment kind.
    public var shape: Shape
    /// λ1 ≥ λ2 ≥ λ3 of M = Σ Z p pᵀ (e·Å²).
    public var moments: [Double]
    /// Axes (0, 1, 2 for x, y, z) whose sign the third moment left undecided somewhere.
    public var undecided: [Int]
    /// Candidate frames formed before repeats were removed.
    public var candidates: Int

    /// A short description, e.g. "1 frame (distinct moments)", "2 frames (oblate; y sign undecided)".
    public var summary: String {
        var s = "\(frames.count) frame\(frames.count == 1 ? "" : "s") (\(shape == .distinct ? "distinct moments" : shape.rawValue)"
        if !undecided.isEmpty { s += "; " + undecided.map { ["x", "y", "z"][$0] }.joined(separator: ", ") + " sign undecided" }
        if candidates > frames.count { s += "; \(candidates) candidates" }
        return s + ")"
    }
}

extension Rotation {
    /// A matrix from its rows (orthonormal rows not checked); may be a reflection.
    public init(rows: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)) {
        self = .identity
        self.rows = rows
    }

    /// det A (+1 for a rotation, −1 for a rotation with a reflection).
    public var determinant: Double {
        let (a, b, c) = rows
        return a.x * (b.y * c.z - b.z * c.y) - a.y * (b.x * c.z - b.z * c.x) + a.z * (b.x * c.y - b.y * c.x)
    }
}

/// Eigenvalues (descending) and unit eigenvectors of a symmetric 3 × 3 matrix (row-major),
/// by cyclic Jacobi rotations in Double.
func symmetricEigen3(_ matrix: [Double]) -> (values: [Double], vectors: [SIMD3<Double>]) {
    var a = matrix
    var v: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    let norm = a.map { $0 * $0 }.reduce(0, +).squareRoot()
    for _ in 0..<64 {
        let off = (a[1] * a[1] + a[2] * a[2] + a[5] * a[5]).squareRoot()
        if off <= 1e-15 * norm || off == 0 { break }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            let apq = a[3 * p + q]
            if apq == 0 { continue }
            let theta = (a[3 * q + q] - a[3 * p + p]) / (2 * apq)
            let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
            let cs = 1 / (t * t + 1).squareRoot(), sn = t * cs
            // A ← Jᵀ A J with J the rotation in the (p, q) plane.
            for k in 0..<3 {
                let akp = a[3 * k + p], akq = a[3 * k + q]
                a[3 * k + p] = cs * akp - sn * akq
                a[3 * k + q] = sn * akp + cs * akq
            }
            for k in 0..<3 {
                let apk = a[3 * p + k], aqk = a[3 * q + k]
                a[3 * p + k] = cs * apk - sn * aqk
                a[3 * q + k] = sn * apk + cs * aqk
            }
            for k in 0..<3 {
                let vkp = v[3 * k + p], vkq = v[3 * k + q]
                v[3 * k + p] = cs * vkp - sn * vkq
                v[3 * k + q] = sn * vkp + cs * vkq
            }
        }
    }
    let order = [0, 1, 2].sorted { a[4 * $0] > a[4 * $1] }
    return (order.map { a[4 * $0] }, order.map { SIMD3(v[$0], v[3 + $0], v[6 + $0]) })
}
