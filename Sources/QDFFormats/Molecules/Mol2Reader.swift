import QuantumDeepField
// Tripos mol2 files (.mol2, several molecules per file), as Open Babel, RDKit-based tools
// and docking programs write them:
//
//     @<TRIPOS>MOLECULE
//     aspirin                         <- the molecule's id (else the file stem)
//      21 21 0 0 0                    <- atoms, bonds, ...
//     SMALL
//     GASTEIGER                       <- charge type (NO_CHARGES: none)
//
//     @<TRIPOS>ATOM
//           1 C1   1.2340  0.1230 -0.4560 C.ar  1  UNL1  -0.0620   <- id name x y z type [subst charge]
//     @<TRIPOS>BOND                   <- other sections are skipped
//
// The element is the SYBYL type before its '.' (C.ar → C, N.am → N, Cl → Cl). mol2 has
// partial, not formal, charges: a whole-numbered, nonzero sum of them is recorded as the
// molecule's net charge (so an anion or a cation is caught; a zwitterion is not).

public final class Mol2Reader: MoleculeReader {
    private let lines: LineReader
    private let stem: String
    private var seen = SeenIDs()
    private var pending: String? = nil
    private var count = 0
    public var path: String { lines.path }
    public private(set) var moleculeLine = 0
    /// The line of each atom of the molecule `next()` returned last.
    public private(set) var atomLines: [Int] = []

    /// Reads a mol2 file.
    public convenience init(path: String) throws { self.init(lines: try openLines(path)) }
    /// Reads the lines of an open file.
    package init(lines: LineReader) {
        self.lines = lines
        stem = fileStem(lines.path)
    }

    private func nextLine() throws -> String? {
        if let p = pending { pending = nil; return p }
        return try lines.nextLine()
    }

    public func next() throws -> Molecule? {
        // Find the next @<TRIPOS>MOLECULE.
        var found = false
        while let l = try nextLine() {
            if l.hasPrefix("@<TRIPOS>MOLECULE") { found = true; break }
        }
        guard found else {
            if count == 0 { throw QDFError("no '@<TRIPOS>MOLECULE' section: not a mol2 file", file: lines.path) }
            return nil
        }
        count += 1
        let start = lines.lineNumber
        guard let nameLine = try nextLine(), let countsLine = try nextLine() else {
            throw lines.error("file ends inside the MOLECULE section")
        }
        let name = nameLine.trimmingCharacters(in: .whitespaces)
        let id = name.isEmpty || name == "*****" ? (count == 1 ? stem : "\(stem)_\(count)") : name
        guard let n = tokens(countsLine).first.flatMap({ Int($0) }), n > 0 else {
            throw lines.error("expected the number of atoms on the MOLECULE section's second line, found '\(excerpt(countsLine))'")
        }
        _ = try nextLine()  // molecule type
        let chargeType = (try nextLine() ?? "").trimmingCharacters(in: .whitespaces).uppercased()
        var zs = [Int](), ps = [SIMD3<Double>](), lineOfAtom = [Int](), partial = [Double]()
        var sawAtoms = false
        while let l = try nextLine() {
            if l.hasPrefix("@<TRIPOS>MOLECULE") { pending = l; break }
            if l.hasPrefix("@<TRIPOS>ATOM") {
                sawAtoms = true
                for i in 0..<n {
                    guard let a = try nextLine() else { throw lines.error("file ends after \(i) of \(n) atoms of '\(id)'") }
                    if a.hasPrefix("@<TRIPOS>") { throw lines.error("ATOM section of '\(id)' ends after \(i) of \(n) atoms") }
                    let t = tokens(a)
                    guard t.count >= 6 else { throw lines.error("expected a mol2 atom line 'id name x y z type ...', found \(t.count) fields") }
                    var p = SIMD3<Double>()
                    for k in 0..<3 {
                        guard let v = parseNumber(t[k + 2]) else {
                            throw lines.error("coordinate \(["x", "y", "z"][k]) is not a finite number: '\(excerpt(t[k + 2]))'")
                        }
                        p[k] = v
                    }
                    let type = t[5].split(separator: ".").first.map(String.init) ?? ""
                    guard let z = Element.atomicNumber(type) else {
                        throw lines.error("atom type '\(excerpt(t[5]))' names no element (dummy atoms and lone pairs are not supported)")
                    }
                    if t.count >= 9, let q = Double(t[8]) { partial.append(q) }
                    zs.append(z); ps.append(p); lineOfAtom.append(lines.lineNumber)
                }
            }
        }
        guard sawAtoms else { throw QDFError("molecule '\(id)' has no '@<TRIPOS>ATOM' section", file: lines.path, line: start) }
        var charge: Int? = nil
        if chargeType != "NO_CHARGES", partial.count == zs.count {
            let s = partial.reduce(0, +)
            if abs(s - s.rounded()) < 0.01, abs(s) < 1000, s.rounded() != 0 { charge = Int(s.rounded()) }
        }
        let m = Molecule(id: id, atomicNumbers: zs, positions: ps, charge: charge)
        try validate(m, file: lines.path, line: start)
        try seen.check(id, file: lines.path, line: start)
        moleculeLine = start
        atomLines = lineOfAtom
        return m
    }
}
