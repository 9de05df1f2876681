import QuantumDeepField
// MDL molfiles (.mol) and SD files (.sdf, many records), V2000 connection tables, as
// RDKit (Chem.SDWriter, MolToMolBlock) and Open Babel write them:
//
//     methane                       <- line 1: the molecule's name (its id; file stem if empty)
//          RDKit          3D        <- line 2: program line; columns 21-22 give 2D/3D
//                                   <- line 3: comment
//       5  4  0  0  0  0  0  0  0  0999 V2000    <- counts: atoms, bonds (3 columns each)
//        -0.0127    1.0858    0.0080 C   0  0 ...   <- atom block: x y z symbol ...
//       1  2  1  0                  <- bond block (ignored: QDF needs only positions)
//     M  END
//     >  <energy>                   <- SD data items (properties, by name)
//     -40.47893
//                                   <- blank line ends a data item
//     $$$$                          <- end of record
//
// Coordinates must be 3D: a record whose program line says 2D is an error (QDF needs
// real geometries; embed them first, e.g. RDKit's AllChem.EmbedMolecule).

public final class SDFReader: MoleculeReader {
    private let lines: LineReader
    private let stem: String
    private let properties: [String]
    private var seen = SeenIDs()
    private var record = 0
    public var path: String { lines.path }
    public private(set) var moleculeLine = 0

    /// - Parameter properties: names of SD data items to read as property values.
    public init(path: String, properties: [String] = []) throws {
        lines = try openLines(path)
        stem = fileStem(path)
        self.properties = properties
    }

    public func next() throws -> Molecule? {
        // Line 1 (the name); blank lines before a record at the end of the file are skipped,
        // but a blank name line is allowed when a counts line follows.
        guard let nameLine = try lines.nextLine() else { return nil }
        let startLine = lines.lineNumber
        record += 1
        guard let program = try lines.nextLine() else {
            if nameLine.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            throw lines.error("file ends inside the header of record \(record)")
        }
        guard try lines.nextLine() != nil, let counts = try lines.nextLine() else {
            if nameLine.trimmingCharacters(in: .whitespaces).isEmpty && program.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            throw lines.error("file ends inside the header of record \(record)")
        }
        let trimmedName = nameLine.trimmingCharacters(in: .whitespaces)
        let id = trimmedName.isEmpty ? (record == 1 ? stem : "\(stem)_\(record)") : trimmedName
        let prog = Array(program.utf8)
        if prog.count >= 22 && prog[20] == UInt8(ascii: "2") && prog[21] == UInt8(ascii: "D") {
            throw QDFError("record '\(id)' has 2D coordinates (the program line says 2D); QDF needs 3D coordinates (embed the molecule first)",
                           file: lines.path, line: startLine + 1)
        }
        if counts.contains("V3000") {
            throw lines.error("V3000 molfiles are not supported; write V2000 (RDKit: forceV3000=False, Open Babel: the default)")
        }
        // The counts line: atoms in columns 1-3, bonds in 4-6 (fixed width; fall back to tokens).
        let cb = Array(counts.utf8)
        func field(_ from: Int, _ to: Int) -> Int? {
            guard cb.count >= to else { return nil }
            return Int(String(decoding: cb[from..<to], as: UTF8.self).trimmingCharacters(in: .whitespaces))
        }
        var atomCount = field(0, 3), bondCount = field(3, 6)
        if atomCount == nil || bondCount == nil {
            let t = tokens(counts)
            if t.count >= 2 { atomCount = Int(t[0]); bondCount = Int(t[1]) }
        }
        guard let na = atomCount, let nb = bondCount, na > 0, nb >= 0 else {
            throw lines.error("expected a V2000 counts line (atoms, bonds, ... V2000), found '\(counts)'")
        }
        var zs = [Int](), ps = [SIMD3<Double>]()
        // The count comes from the file: reserve no more than a plausible molecule needs.
        zs.reserveCapacity(min(na, 4096)); ps.reserveCapacity(min(na, 4096))
        for i in 0..<na {
            guard let l = try lines.nextLine() else {
                throw lines.error("file ends after \(i) of \(na) atoms of record '\(id)'")
            }
            let t = tokens(l)
            guard t.count >= 4 else { throw lines.error("expected an atom line 'x y z symbol ...', found \(t.count) fields") }
            var p = SIMD3<Double>()
            for k in 0..<3 {
                guard let v = parseNumber(t[k]) else {
                    throw lines.error("coordinate \(["x", "y", "z"][k]) is not a finite number: '\(t[k])'")
                }
                p[k] = v
            }
            guard let z = Element.atomicNumber(t[3]) else {
                throw lines.error("unknown element symbol '\(t[3])'")
            }
            zs.append(z); ps.append(p)
        }
        for i in 0..<nb {
            guard try lines.nextLine() != nil else {
                throw lines.error("file ends after \(i) of \(nb) bonds of record '\(id)'")
            }
        }
        // Properties block up to "M  END".
        var sawEnd = false
        while let l = try lines.nextLine() {
            if l.hasPrefix("M  END") { sawEnd = true; break }
            if l.hasPrefix("$$$$") { throw lines.error("record '\(id)' ends without 'M  END'") }
        }
        guard sawEnd else { throw lines.error("file ends before 'M  END' of record '\(id)'") }
        // SD data items up to "$$$$" (a .mol file just ends).
        var data = [String: (String, Int)]()
        var current: String? = nil
        var currentLine = 0
        var value = ""
        while let l = try lines.nextLine() {
            if l.hasPrefix("$$$$") { break }
            if current == nil {
                if l.hasPrefix(">") {
                    guard let a = l.firstIndex(of: "<"), let b = l[a...].firstIndex(of: ">") else {
                        throw lines.error("SD data header without a <name>: '\(l)'")
                    }
                    current = String(l[l.index(after: a)..<b])
                    currentLine = lines.lineNumber + 1
                    value = ""
                } else if !l.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw lines.error("unexpected line after 'M  END' of record '\(id)' (expected '> <name>' or '$$$$')")
                }
            } else if l.trimmingCharacters(in: .whitespaces).isEmpty {
                data[current!] = (value, currentLine)
                current = nil
            } else {
                value += value.isEmpty ? l : " " + l
            }
        }
        if let c = current { data[c] = (value, currentLine) }
        var props = [Double]()
        for name in properties {
            guard let (v, line) = data[name] else {
                throw QDFError("record '\(id)' has no data item <\(name)> (it has: \(data.keys.sorted().joined(separator: ", ")))",
                               file: lines.path, line: startLine)
            }
            let parts = tokens(v)
            guard !parts.isEmpty else { throw QDFError("data item <\(name)> is empty", file: lines.path, line: line) }
            for p in parts {
                guard let x = parseNumber(p) else {
                    throw QDFError("data item <\(name)> is not a number: '\(v)'", file: lines.path, line: line)
                }
                props.append(x)
            }
        }
        let m = Molecule(id: id, atomicNumbers: zs, positions: ps, properties: props)
        try validate(m, file: lines.path, line: startLine)
        try seen.check(id, file: lines.path, line: startLine)
        moleculeLine = startLine
        return m
    }
}
