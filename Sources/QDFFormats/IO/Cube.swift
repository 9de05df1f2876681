#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QuantumDeepField

// Gaussian cube files: a scalar field on a regular grid, in bohr.
//
//   line 1-2   comments
//   line 3     N_atoms  origin_x origin_y origin_z          (N_atoms < 0: an orbital cube, see below)
//   line 4-6   N_i  a_i,x a_i,y a_i,z                        (grid count and step vector of axis i;
//                                                            N_i < 0 means the step is in ångström)
//   N_atoms lines   Z  charge  x y z
//   [orbital cubes only: a line "m  id_1 … id_m"]
//   values, x-major, then y, then z (z fastest); each z column starts a new line, 6 values a line.
//
// Positions and steps are stored here in bohr, values as Float (angstromPerBohr and
// bohrPerAngstrom are the core's, MoleculeCheck.swift).

/// A regular grid: point (i, j, k) is origin + i·axes[0] + j·axes[1] + k·axes[2] (bohr).
public struct CubeGrid: Sendable, Equatable {
    public var origin: SIMD3<Double>
    public var axes: [SIMD3<Double>]
    public var counts: [Int]

    public init(origin: SIMD3<Double>, axes: [SIMD3<Double>], counts: [Int]) {
        precondition(axes.count == 3 && counts.count == 3, "a cube grid has three axes")
        self.origin = origin
        self.axes = axes
        self.counts = counts
    }

    public var pointCount: Int { counts[0] * counts[1] * counts[2] }

    /// Volume of one voxel (bohr³): |det(axes)|.
    public var voxelVolume: Double {
        let a = axes[0], b = axes[1], c = axes[2]
        let cross = SIMD3(b.y * c.z - b.z * c.y, b.z * c.x - b.x * c.z, b.x * c.y - b.y * c.x)
        return abs((a * cross).sum())
    }

    /// The point with flat index n (x-major, z fastest), in bohr.
    @inline(__always)
    public func point(_ n: Int) -> SIMD3<Double> {
        let k = n % counts[2], j = (n / counts[2]) % counts[1], i = n / (counts[1] * counts[2])
        return origin + Double(i) * axes[0] + Double(j) * axes[1] + Double(k) * axes[2]
    }

    /// The box PySCF's `cubegen` uses (and so the reference DFT cubes): the atoms' bounding
    /// box plus `margin` bohr on every side, n_i = ceil(extent_i / resolution) points on each
    /// axis, spaced extent_i / (n_i − 1) so that the last point lies on the far face.
    public static func around(_ molecule: Molecule, resolution: Double, margin: Double) -> CubeGrid {
        let p = molecule.positions.map { $0 * bohrPerAngstrom }
        var lo = p[0], hi = p[0]
        for x in p { lo = pointwiseMin(lo, x); hi = pointwiseMax(hi, x) }
        let box = hi - lo + SIMD3(repeating: 2 * margin)
        var axes = [SIMD3<Double>](), counts = [Int]()
        for d in 0..<3 {
            let n = max(2, Int((box[d] / resolution).rounded(.up)))
            var a = SIMD3<Double>(0, 0, 0)
            a[d] = box[d] / Double(n - 1)
            axes.append(a); counts.append(n)
        }
        return CubeGrid(origin: lo - SIMD3(repeating: margin), axes: axes, counts: counts)
    }

    /// Continuous grid coordinates (i, j, k) of a point in bohr (inverse of `point`).
    public func gridCoordinates(_ r: SIMD3<Double>) -> SIMD3<Double> {
        let v = r - origin
        let a = axes[0], b = axes[1], c = axes[2]
        // Solve [a b c] x = v by Cramer's rule.
        func det(_ u: SIMD3<Double>, _ w: SIMD3<Double>, _ z: SIMD3<Double>) -> Double {
            u.x * (w.y * z.z - w.z * z.y) - w.x * (u.y * z.z - u.z * z.y) + z.x * (u.y * w.z - u.z * w.y)
        }
        let d = det(a, b, c)
        return SIMD3(det(v, b, c) / d, det(a, v, c) / d, det(a, b, v) / d)
    }
}

/// One atom of a cube file (bohr).
public struct CubeAtom: Sendable, Equatable {
    public var atomicNumber: Int
    public var charge: Double
    public var position: SIMD3<Double>
    public init(atomicNumber: Int, charge: Double, position: SIMD3<Double>) {
        self.atomicNumber = atomicNumber
        self.charge = charge
        self.position = position
    }
}

public struct CubeFile: Sendable, Equatable {
    public var comments: [String]
    public var grid: CubeGrid
    public var atoms: [CubeAtom]
    /// grid.pointCount values, x-major, then y, then z.
    public var values: [Float]

    public init(comments: [String], grid: CubeGrid, atoms: [CubeAtom], values: [Float]) {
        precondition(values.count == grid.pointCount, "one value per grid point")
        self.comments = comments
        self.grid = grid
        self.atoms = atoms
        self.values = values
    }

    /// Atoms of a molecule (ångström) as cube atoms (bohr), charge = Z.
    public static func atoms(of m: Molecule) -> [CubeAtom] {
        (0..<m.atomCount).map {
            CubeAtom(atomicNumber: m.atomicNumbers[$0], charge: Double(m.atomicNumbers[$0]),
                     position: m.positions[$0] * bohrPerAngstrom)
        }
    }

    /// N_e = Σ Z of the atoms.
    public var electronCount: Int { atoms.reduce(0) { $0 + $1.atomicNumber } }

    /// Σ values · voxel volume.
    public var integral: Double {
        var s = 0.0
        for v in values { s += Double(v) }
        return s * grid.voxelVolume
    }

    /// The value at a point (bohr) by trilinear interpolation; nil outside the grid.
    public func interpolate(_ r: SIMD3<Double>) -> Float? {
        let g = grid.gridCoordinates(r)
        let n = grid.counts
        var base = [Int](repeating: 0, count: 3), frac = [Double](repeating: 0, count: 3)
        for d in 0..<3 {
            let x = g[d]
            if x < -1e-9 || x > Double(n[d] - 1) + 1e-9 { return nil }
            let clamped = min(max(x, 0), Double(n[d] - 1))
            var i = Int(clamped.rounded(.down))
            if i >= n[d] - 1 { i = max(n[d] - 2, 0) }
            base[d] = i
            frac[d] = n[d] == 1 ? 0 : clamped - Double(i)
        }
        var acc = 0.0
        for c in 0..<8 {
            let di = c >> 2 & 1, dj = c >> 1 & 1, dk = c & 1
            let i = min(base[0] + di, n[0] - 1), j = min(base[1] + dj, n[1] - 1), k = min(base[2] + dk, n[2] - 1)
            let w = (di == 1 ? frac[0] : 1 - frac[0]) * (dj == 1 ? frac[1] : 1 - frac[1]) * (dk == 1 ? frac[2] : 1 - frac[2])
            if w != 0 { acc += w * Double(values[(i * n[1] + j) * n[2] + k]) }
        }
        return Float(acc)
    }

    // MARK: - Writing

    /// The file's bytes: values in %13.5E, 6 a line, each z column starting a new line.
    public func data() -> Data {
        var head = ""
        var c = comments
        while c.count < 2 { c.append("") }
        head += sanitize(c[0]) + "\n" + sanitize(c[1]) + "\n"
        head += cFormat("%5d %11.6f %11.6f %11.6f\n", Int32(atoms.count), grid.origin.x, grid.origin.y, grid.origin.z)
        for d in 0..<3 {
            head += cFormat("%5d %11.6f %11.6f %11.6f\n", Int32(grid.counts[d]), grid.axes[d].x, grid.axes[d].y, grid.axes[d].z)
        }
        for a in atoms {
            head += cFormat("%5d %11.6f %11.6f %11.6f %11.6f\n", Int32(a.atomicNumber), a.charge,
                            a.position.x, a.position.y, a.position.z)
        }
        var out = [UInt8](head.utf8)
        out.reserveCapacity(out.count + values.count * 13 + values.count / 6 + 16)
        var buf = [CChar](repeating: 0, count: 32)
        let nz = grid.counts[2]
        buf.withUnsafeMutableBufferPointer { b in
            var n = 0
            while n < values.count {
                for k in 0..<nz {
                    let len = withVaList([Double(values[n + k])]) { vsnprintf(b.baseAddress!, 32, " %12.5E", $0) }
                    for i in 0..<Int(len) { out.append(UInt8(bitPattern: b[i])) }
                    if k % 6 == 5 || k == nz - 1 { out.append(10) }
                }
                n += nz
            }
        }
        return Data(out)
    }

    public func text() -> String { String(decoding: data(), as: UTF8.self) }

    /// Writes the cube atomically (temporary file + rename).
    public func write(path: String) throws {
        try writeAtomically(data(), to: path)
    }

    private func sanitize(_ s: String) -> String {
        s.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    // MARK: - Reading

    /// Reads a cube file (decompressed while read when its name ends in .gz or .bz2).
    /// Errors name the file, the line and the problem.
    public static func read(path: String) throws -> CubeFile {
        var bytes = [UInt8]()
        let lower = path.lowercased()
        if lower.hasSuffix(".gz") || lower.hasSuffix(".bz2") {
            let source = try openByteSource(path)
            defer { source.close() }
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try chunk.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: $0.count) }
                if n == 0 { break }
                bytes += chunk[0..<n]
            }
        } else {
            do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
                throw QDFError("cannot read: \(error.localizedDescription)", file: path)
            }
        }
        var s = CubeScanner(bytes: bytes, path: path)
        let c1 = s.line(), c2 = s.line()
        guard c1 != nil, c2 != nil else { throw s.error("file ends inside the two comment lines") }
        var header = try s.numbers(4, what: "'N_atoms origin_x origin_y origin_z'")
        guard let na = Int(exactly: header[0]) else { throw s.error("the number of atoms is not an integer") }
        // Each atom needs a line of its own: a count beyond the file's size is corrupt (and
        // is refused before any allocation).
        guard na.magnitude <= UInt(s.bytes.count) else { throw s.error("\(na) atoms cannot fit in a file of \(s.bytes.count) bytes") }
        let origin = SIMD3(header[1], header[2], header[3])
        var axes = [SIMD3<Double>](), counts = [Int]()
        var angstrom = false
        for d in 0..<3 {
            header = try s.numbers(4, what: "'N_\(["x", "y", "z"][d]) step_x step_y step_z'")
            guard let n = Int(exactly: header[0]), n != 0 else { throw s.error("grid count must be a non-zero integer") }
            guard n.magnitude <= UInt(s.bytes.count) else { throw s.error("grid count \(n) cannot fit in a file of \(s.bytes.count) bytes") }
            if n < 0 { angstrom = true }
            counts.append(abs(n))
            axes.append(SIMD3(header[1], header[2], header[3]))
        }
        let unit = angstrom ? bohrPerAngstrom : 1
        var atoms = [CubeAtom]()
        for a in 0..<abs(na) {
            let t = try s.numbers(5, what: "atom \(a + 1): 'Z charge x y z'")
            guard let z = Int(exactly: t[0]), z >= 0 else { throw s.error("atomic number is not a non-negative integer") }
            atoms.append(CubeAtom(atomicNumber: z, charge: t[1], position: SIMD3(t[2], t[3], t[4]) * unit))
        }
        if na < 0 {
            // Orbital cube: "m id_1 … id_m"; one value per point is supported.
            guard let l = s.line() else { throw s.error("file ends before the orbital-index line") }
            let t = l.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let m = t.first.flatMap({ Int($0) }) else { throw s.error("expected the orbital-index line 'm id…'") }
            guard m == 1 else { throw s.error("orbital cube with \(m) values per point: only one is supported") }
        }
        let (xy, o1) = counts[0].multipliedReportingOverflow(by: counts[1])
        let (_, o2) = xy.multipliedReportingOverflow(by: counts[2])
        guard !o1, !o2 else { throw s.error("a grid of \(counts[0])×\(counts[1])×\(counts[2]) values cannot fit in a file of \(s.bytes.count) bytes") }
        let grid = CubeGrid(origin: origin * unit, axes: axes.map { $0 * unit }, counts: counts)
        let total = grid.pointCount
        // Memory for the values the rest of the file can hold at most (a digit and a
        // separator each): a corrupt header never causes a huge allocation.
        var values = [Float]()
        values.reserveCapacity(min(total, (s.bytes.count - s.pos + 1) / 2))
        for n in 0..<total {
            guard let x = s.nextValue() else {
                if s.badToken != nil { throw s.error("value is not a number: '\(s.badToken!)'") }
                throw s.error("file ends after \(n) of \(total) values (\(counts[0])×\(counts[1])×\(counts[2]))")
            }
            values.append(x)
        }
        if s.hasMoreTokens() { throw s.error("more values than the \(counts[0])×\(counts[1])×\(counts[2]) grid holds") }
        return CubeFile(comments: [c1!, c2!], grid: grid, atoms: atoms, values: values)
    }
}

/// printf-style formatting through the C library (fast and exact).
func cFormat(_ format: String, _ args: CVarArg...) -> String {
    var buf = [CChar](repeating: 0, count: 256)
    let n = buf.withUnsafeMutableBufferPointer { b in withVaList(args) { vsnprintf(b.baseAddress!, 256, format, $0) } }
    if Int(n) >= 256 { return String(format: format, arguments: args) }
    return buf.withUnsafeBufferPointer { b in
        String(decoding: UnsafeRawBufferPointer(start: b.baseAddress!, count: Int(n)).bindMemory(to: UInt8.self), as: UTF8.self)
    }
}

/// A byte scanner over a cube file's text with line numbers.
struct CubeScanner {
    let bytes: [UInt8]
    let path: String
    var pos = 0
    var lineNumber = 0       // line of the last token or line read
    var badToken: String? = nil

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    func error(_ message: String) -> QDFError { QDFError(message, file: path, line: max(lineNumber, 1)) }

    /// The next whole line (without terminator), or nil at the end.
    mutating func line() -> String? {
        guard pos < bytes.count else { return nil }
        var end = pos
        while end < bytes.count && bytes[end] != 10 { end += 1 }
        var stop = end
        if stop > pos && bytes[stop - 1] == 13 { stop -= 1 }
        let s = String(decoding: bytes[pos..<stop], as: UTF8.self)
        pos = min(end + 1, bytes.count)
        lineNumber += 1
        return s
    }

    /// A header line of at least `count` numbers.
    mutating func numbers(_ count: Int, what: String) throws -> [Double] {
        guard let l = line() else { throw error("file ends; expected \(what)") }
        let t = l.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard t.count >= count else { throw error("expected \(what), found '\(l.trimmingCharacters(in: .whitespaces))'") }
        var out = [Double]()
        for x in t.prefix(count) {
            guard let v = Double(x), v.isFinite else { throw error("expected \(what); '\(x)' is not a number") }
            out.append(v)
        }
        return out
    }

    private mutating func skipSpace() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 10 { lineNumber += 1; pos += 1 }
            else if b == 32 || b == 9 || b == 13 { pos += 1 }
            else { break }
        }
    }

    /// The next whitespace-separated number, or nil (at the end, or `badToken` set).
    mutating func nextValue() -> Float? {
        // The line counter counts completed lines; a value on the current line is line + 1.
        skipSpace()
        guard pos < bytes.count else { return nil }
        var end = pos
        while end < bytes.count, bytes[end] != 32, bytes[end] != 10, bytes[end] != 9, bytes[end] != 13 { end += 1 }
        let n = end - pos
        var tmp: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        let value: Float? = withUnsafeMutableBytes(of: &tmp) { raw -> Float? in
            guard n < raw.count else { return nil }
            for i in 0..<n { raw[i] = bytes[pos + i] }
            raw[n] = 0
            let cstr = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            var endp: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(cstr, &endp)
            // Finite as a Float too: 1e300 is a number but not a density value we can hold.
            guard endp == cstr + n, v.isFinite, Float(v).isFinite else { return nil }
            return Float(v)
        }
        if value == nil {
            badToken = String(decoding: bytes[pos..<end], as: UTF8.self)
            lineNumber += 1
            return nil
        }
        pos = end
        return value
    }

    mutating func hasMoreTokens() -> Bool {
        skipSpace()
        if pos < bytes.count { lineNumber += 1; return true }
        return false
    }
}
