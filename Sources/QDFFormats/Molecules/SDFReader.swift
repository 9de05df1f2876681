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
// V3000 connection tables (RDKit writes them for large molecules, and with forceV3000):
//
//       0  0  0     0  0            999 V3000    <- counts line
//     M  V30 BEGIN CTAB
//     M  V30 COUNTS 21 21 0 0 0
//     M  V30 BEGIN ATOM
//     M  V30 1 C -0.0127 1.0858 0.0080 0 CHG=-1  <- index, symbol, x y z, map, KEY=value
//     M  V30 END ATOM                              (a trailing '-' continues a line)
//     ... bonds, collections (ignored) ...
//     M  V30 END CTAB
//     M  END
//
// Formal charges: V2000's `M  CHG` lines (which supersede the atom block's charge
// field, columns 37-39: 1 → +3, 2 → +2, 3 → +1, 5 → −1, 6 → −2, 7 → −3), V3000's `CHG=`.
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
    /// The line of each atom of the record `next()` returned last.
    public private(set) var atomLines: [Int] = []
    private var v30Line = 0

    /// - Parameter properties: names of SD data items to read as property values.
    public convenience init(path: String, properties: [String] = []) throws {
        self.init(lines: try openLines(path), properties: properties)
    }

    /// Reads the lines of an open file (standard input, a sniffed or decompressed file).
    package init(lines: LineReader, properties: [String] = []) {
        self.lines = lines
        stem = fileStem(lines.path)
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
        var zs = [Int](), ps = [SIMD3<Double>](), lineOfAtom = [Int](), charges = [Int]()
        if counts.contains("V3000") {
            try readV3000(id: id, zs: &zs, ps: &ps, lineOfAtom: &lineOfAtom, charges: &charges)
        } else {
            try readV2000(counts: counts, id: id, zs: &zs, ps: &ps, lineOfAtom: &lineOfAtom, charges: &charges)
        }
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
                        throw lines.error("SD data header without a <name>: '\(excerpt(l))'")
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
                let has = data.isEmpty ? "it has no data items" : "it has: " + data.keys.sorted().map { "<\(excerpt($0))>" }.joined(separator: ", ")
                throw QDFError("record '\(id)' has no data item <\(name)> (\(has))",
                               file: lines.path, line: startLine)
            }
            let parts = tokens(v)
            guard !parts.isEmpty else { throw QDFError("data item <\(name)> is empty", file: lines.path, line: line) }
            for p in parts {
                guard let x = parseNumber(p) else {
                    throw QDFError("data item <\(name)> is not a number: '\(excerpt(v))'", file: lines.path, line: line)
                }
                props.append(x)
            }
        }
        let m = Molecule(id: id, atomicNumbers: zs, positions: ps, properties: props,
                         formalCharges: charges.allSatisfy { $0 == 0 } ? [] : charges)
        try validate(m, file: lines.path, line: startLine)
        try seen.check(id, file: lines.path, line: startLine)
        moleculeLine = startLine
        atomLines = lineOfAtom
        return m
    }

    /// The V2000 counts line, atom block (with the charge field), bond block and properties
    /// block up to `M  END` (where `M  CHG` lines replace the atom block's charges).
    private func readV2000(counts: String, id: String, zs: inout [Int], ps: inout [SIMD3<Double>],
                           lineOfAtom: inout [Int], charges: inout [Int]) throws {
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
            throw lines.error("expected a V2000 counts line (atoms, bonds, ... V2000), found '\(excerpt(counts))'")
        }
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
                    throw lines.error("coordinate \(["x", "y", "z"][k]) is not a finite number: '\(excerpt(t[k]))'")
                }
                p[k] = v
            }
            guard let z = Element.atomicNumber(t[3]) else {
                throw lines.error("unknown element symbol '\(excerpt(t[3]))'")
            }
            // Charge field: columns 37-39 (or the sixth token of a line not in fixed columns).
            let b = Array(l.utf8)
            let code = b.count >= 39 ? Int(String(decoding: b[36..<39], as: UTF8.self).trimmingCharacters(in: .whitespaces))
                                     : (t.count >= 6 ? Int(t[5]) : nil)
            let charge: Int
            switch code ?? 0 {
            case 1: charge = 3
            case 2: charge = 2
            case 3: charge = 1
            case 5: charge = -1
            case 6: charge = -2
            case 7: charge = -3
            default: charge = 0
            }
            zs.append(z); ps.append(p); lineOfAtom.append(lines.lineNumber); charges.append(charge)
        }
        for i in 0..<nb {
            guard try lines.nextLine() != nil else {
                throw lines.error("file ends after \(i) of \(nb) bonds of record '\(id)'")
            }
        }
        // Properties block up to "M  END".
        var sawCHG = false
        while let l = try lines.nextLine() {
            if l.hasPrefix("M  END") { return }
            if l.hasPrefix("$$$$") { throw lines.error("record '\(id)' ends without 'M  END'") }
            if l.hasPrefix("M  CHG") {
                if !sawCHG { sawCHG = true; for k in charges.indices { charges[k] = 0 } }
                let t = tokens(l).dropFirst(2)
                guard let n = t.first.flatMap({ Int($0) }), n >= 0, t.count >= 1 + 2 * n else {
                    throw lines.error("malformed 'M  CHG' line: '\(excerpt(l))'")
                }
                let v = Array(t.dropFirst())
                for k in 0..<n {
                    guard let a = Int(v[2 * k]), let q = Int(v[2 * k + 1]), a >= 1, a <= charges.count, abs(q) <= 15 else {
                        throw lines.error("malformed 'M  CHG' line: '\(excerpt(l))'")
                    }
                    charges[a - 1] = q
                }
            }
        }
        throw lines.error("file ends before 'M  END' of record '\(id)'")
    }

    /// The next V3000 line, joined with its continuation lines (a trailing '-'), without
    /// the "M  V30 " prefix; nil for `M  END`.
    private func nextV30(_ id: String) throws -> String? {
        guard var l = try lines.nextLine() else { throw lines.error("file ends before 'M  END' of record '\(id)'") }
        v30Line = lines.lineNumber
        if l.hasPrefix("M  END") { return nil }
        if l.hasPrefix("$$$$") { throw lines.error("record '\(id)' ends without 'M  END'") }
        guard l.hasPrefix("M  V30") else { return "" }
        l = String(l.dropFirst(6))
        while l.hasSuffix("-") {
            l.removeLast()
            guard let more = try lines.nextLine(), more.hasPrefix("M  V30") else {
                throw lines.error("a V3000 line continued with '-' is not followed by an 'M  V30' line")
            }
            l += String(more.dropFirst(7))
        }
        return l.trimmingCharacters(in: .whitespaces)
    }

    /// A V3000 connection table up to `M  END`: the atom block (symbol, x y z, CHG=).
    private func readV3000(id: String, zs: inout [Int], ps: inout [SIMD3<Double>],
                           lineOfAtom: inout [Int], charges: inout [Int]) throws {
        var declared: Int? = nil, declaredLine = 0
        var inAtoms = false, sawAtoms = false
        while let l = try nextV30(id) {
            let t = tokens(l)
            if t.first == "COUNTS", t.count >= 2 {
                guard let n = Int(t[1]), n >= 0 else { throw lines.error("malformed V3000 COUNTS line: '\(excerpt(l))'") }
                declared = n; declaredLine = v30Line
            } else if l.hasPrefix("BEGIN ATOM") {
                inAtoms = true; sawAtoms = true
            } else if l.hasPrefix("END ATOM") {
                inAtoms = false
            } else if inAtoms {
                guard t.count >= 5 else { throw lines.error("expected a V3000 atom line 'index symbol x y z ...', found \(t.count) fields") }
                guard let z = Element.atomicNumber(t[1]) else {
                    throw lines.error("unknown element symbol '\(excerpt(t[1]))' (QDF needs one element per atom)")
                }
                var p = SIMD3<Double>()
                for k in 0..<3 {
                    guard let v = parseNumber(t[k + 2]) else {
                        throw lines.error("coordinate \(["x", "y", "z"][k]) is not a finite number: '\(excerpt(t[k + 2]))'")
                    }
                    p[k] = v
                }
                var charge = 0
                for f in t.dropFirst(6) where f.hasPrefix("CHG=") {
                    guard let q = Int(f.dropFirst(4)), abs(q) <= 15 else { throw lines.error("malformed \(excerpt(f))") }
                    charge = q
                }
                zs.append(z); ps.append(p); lineOfAtom.append(v30Line); charges.append(charge)
            }
        }
        guard sawAtoms else { throw lines.error("V3000 record '\(id)' has no atom block ('M  V30 BEGIN ATOM')") }
        if let n = declared, n != zs.count {
            throw QDFError("V3000 record '\(id)' declares \(n) atoms in COUNTS but lists \(zs.count)", file: lines.path, line: declaredLine)
        }
    }
}
