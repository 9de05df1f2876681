import Foundation

// Streaming readers for molecule files.
//
// QDF text format (as in QM9under14atoms_atomizationenergy_eV/train.txt):
//
//     dsgdb9nsd_000001          <- id line
//     C -0.0126 1.0858 0.0080   <- one "Element x y z" line per atom (ångström)
//     H  0.0021 -0.0060 0.0019
//     -17.17218935239992        <- property line: one or more values (optional when predicting)
//                               <- blank line between molecules
//
// XYZ (single- or multi-frame): atom count, comment line (the molecule's id when
// not empty), then "Element x y z" lines.

/// A reader that yields one molecule at a time.
public protocol MoleculeReader: AnyObject {
    /// The next molecule, or nil at the end of the input.
    func next() throws -> Molecule?
    /// The file being read (for error messages about its molecules).
    var path: String { get }
    /// The line where the molecule `next()` returned last starts (0 before the first).
    var moleculeLine: Int { get }
    /// The 1-based line of each atom of the molecule `next()` returned last, when the
    /// format has one line per atom (empty otherwise); errors about an atom name its line.
    var atomLines: [Int] { get }
    /// Molecules this reader read but did not hand on (a checking reader's skipped
    /// molecules), with the reason; an input whose molecules were all skipped is not empty.
    var skipped: [(id: String, reason: String)] { get }
}

extension MoleculeReader {
    /// No atom lines known.
    public var atomLines: [Int] { [] }

    /// Nothing skipped.
    public var skipped: [(id: String, reason: String)] { [] }

    /// The line of atom `index` (0-based) of the last molecule, or the molecule's line.
    public func line(ofAtom index: Int?) -> Int {
        if let i = index, i >= 0, i < atomLines.count { return atomLines[i] }
        return moleculeLine
    }

    /// Reads every remaining molecule.
    public func readAll() throws -> [Molecule] {
        var out = [Molecule]()
        while let m = try next() { out.append(m) }
        return out
    }
}

/// Text from a file, fit to quote in an error message: characters that are not printable
/// (control characters, invalid UTF-8) escaped as `\u{..}`, cut to `limit` characters.
package func excerpt(_ s: some StringProtocol, limit: Int = 60) -> String {
    var out = ""
    var count = 0
    for u in s.unicodeScalars {
        if count >= limit { out += "…"; break }
        let v = u.value
        if v < 0x20 || v == 0x7F || (v >= 0x80 && v < 0xA0) || v == 0xFFFD {
            out += v == 0xFFFD ? "\\u{FFFD}" : "\\u{\(String(v, radix: 16, uppercase: true))}"
        } else {
            out.unicodeScalars.append(u)
        }
        count += 1
    }
    return out
}

/// Parses an "Element x y z [...]" atom line; the element may be a symbol or an atomic number.
package func parseAtomLine(_ t: [Substring], minTokens: Int = 4, allowExtra: Bool,
                   lines: LineReader) throws -> (Int, SIMD3<Double>) {
    guard t.count >= minTokens, allowExtra || t.count == 4 else {
        throw lines.error("expected 'Element x y z', found \(t.count) field\(t.count == 1 ? "" : "s")")
    }
    let z: Int
    if let n = Element.atomicNumber(t[0]) { z = n }
    else if let n = Int(t[0]), n > 0, n < Element.symbols.count { z = n }
    else { throw lines.error("unknown element symbol '\(excerpt(t[0]))'") }
    var p = SIMD3<Double>()
    for k in 0..<3 {
        guard let v = parseNumber(t[k + 1]) else {
            throw lines.error("coordinate \(["x", "y", "z"][k]) is not a finite number: '\(t[k + 1])'")
        }
        p[k] = v
    }
    return (z, p)
}

/// Checks a finished molecule: at least one atom, no two atoms at the same position.
package func validate(_ m: Molecule, file: String, line: Int) throws {
    if m.atomCount == 0 { throw QDFError("molecule '\(m.id)' has no atoms", file: file, line: line) }
    if m.atomCount <= 4096 {
        for a in 0..<m.atomCount {
            for b in (a + 1)..<m.atomCount where m.positions[a] == m.positions[b] {
                throw QDFError("molecule '\(m.id)': atoms \(a + 1) and \(b + 1) are at the same position",
                               file: file, line: line)
            }
        }
    }
}

/// Remembers the ids a reader has returned, so a repeated id is reported with both lines.
package struct SeenIDs {
    package init() {}
    private var lineOf = [String: Int]()
    package mutating func check(_ id: String, file: String, line: Int) throws {
        if let first = lineOf[id] {
            throw QDFError("molecule id '\(id)' repeats (first at line \(first))", file: file, line: line)
        }
        lineOf[id] = line
    }
}

/// Streams molecules from a QDF text file (format above). Checks each molecule (atoms,
/// coincident atoms, repeated ids, a constant number of property values). One thread at a time.
public final class QDFTextReader: MoleculeReader {
    private let lines: LineReader
    private var seen = SeenIDs()
    private var propertyCount: Int? = nil
    private var pending: String? = nil
    /// The file being read.
    public var path: String { lines.path }
    /// The 1-based line of the id line of the molecule `next()` returned last (0 before the first).
    public private(set) var moleculeLine = 0
    /// The line of each atom of the molecule `next()` returned last.
    public private(set) var atomLines: [Int] = []

    /// Reads `path`. Throws `QDFError` (file: `path`) if the file cannot be opened.
    public convenience init(path: String) throws { try self.init(path: path, source: nil) }

    /// Reads `path`; `source` supplies its bytes when they are not the plain file's (a
    /// decompressing source, for example).
    package convenience init(path: String, source: ByteSource?) throws { self.init(lines: try LineReader(path: path, source: source)) }

    /// Reads the lines of an open file (standard input, a file recognised by its content).
    package init(lines: LineReader) { self.lines = lines }

    private func nextLine() throws -> String? {
        if let p = pending { pending = nil; return p }
        return try lines.nextLine()
    }

    /// The next molecule (positions in Å), or nil at the end of the file. Throws `QDFError`
    /// with file and line for a malformed line, unknown element, non-finite number, empty
    /// molecule, coincident atoms, repeated id or a property count differing from earlier ones.
    public func next() throws -> Molecule? {
        // Skip blank lines before the id line.
        var idLine: String? = nil
        while let l = try nextLine() {
            let t = l.trimmingCharacters(in: .whitespaces)
            if !t.isEmpty { idLine = t; break }
        }
        guard let id = idLine else { return nil }
        let idLineNumber = lines.lineNumber
        if tokens(id).count >= 4, Element.atomicNumber(tokens(id)[0]) != nil {
            throw lines.error("expected a molecule id line, found an atom line (is a blank line missing before it?)")
        }
        var zs = [Int](), ps = [SIMD3<Double>](), props = [Double]()
        var lineOfAtom = [Int]()
        var sawProperties = false
        while let l = try nextLine() {
            let t = tokens(l)
            if t.isEmpty { break }
            if sawProperties {
                throw lines.error("unexpected line after the property line of molecule '\(id)' (a blank line must end each molecule)")
            }
            // A line starting with a number (finite or not: 'nan', 'inf') is the property line.
            if Element.atomicNumber(t[0]) != nil || Double(t[0]) == nil {
                let (z, p) = try parseAtomLine(t, allowExtra: false, lines: lines)
                zs.append(z); ps.append(p); lineOfAtom.append(lines.lineNumber)
            } else {
                for s in t {
                    guard let v = parseNumber(s) else {
                        throw lines.error("property value is not a finite number: '\(excerpt(s))'")
                    }
                    props.append(v)
                }
                sawProperties = true
            }
        }
        let m = Molecule(id: id, atomicNumbers: zs, positions: ps, properties: props)
        try validate(m, file: lines.path, line: idLineNumber)
        try seen.check(id, file: lines.path, line: idLineNumber)
        if let n = propertyCount, n != props.count {
            throw QDFError("molecule '\(id)' has \(props.count) property value\(props.count == 1 ? "" : "s"), earlier molecules have \(n)",
                           file: lines.path, line: lines.lineNumber)
        }
        propertyCount = props.count
        moleculeLine = idLineNumber
        atomLines = lineOfAtom
        return m
    }
}
