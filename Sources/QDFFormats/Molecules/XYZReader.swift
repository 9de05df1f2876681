import QuantumDeepField
// XYZ files, one or many frames per file, in three flavours told apart by the comment line:
//
// - plain XYZ: atom count, comment (the molecule's id when not empty), "Element x y z" lines;
// - extended XYZ (ASE, QUIP): the comment holds key=value pairs, e.g.
//       Properties=species:S:1:pos:R:3 energy=-40.47893 id=methane pbc="F F F"
//   `Properties` gives the atom-line columns (default species:S:1:pos:R:3); the id comes
//   from an `id` or `name` key; requested properties are read from their keys (a quoted
//   value may hold several numbers: "1.0 2.0");
// - QM9's original files (dsgdb9nsd_NNNNNN.xyz): the comment is "gdb N" and 15 property
//   values (`QM9Quantity`: A B C mu alpha homo lumo gap r2 zpve U0 U H G Cv, atomic units), atom lines
//   carry a fifth column (Mulliken charge), numbers may use Mathematica's "*^" exponent,
//   and three lines (frequencies, SMILES, InChI) follow the atoms. The id is
//   dsgdb9nsd_NNNNNN.

public final class XYZReader: MoleculeReader {
    private let lines: LineReader
    private let stem: String
    private let properties: [String]
    private var seen = SeenIDs()
    private var frame = 0
    public var path: String { lines.path }
    public private(set) var moleculeLine = 0
    /// The line of each atom of the frame `next()` returned last.
    public private(set) var atomLines: [Int] = []

    /// - Parameter properties: names of property values to read for each frame (an error
    ///   names the frame that lacks one).
    public convenience init(path: String, properties: [String] = []) throws {
        self.init(lines: try openLines(path), properties: properties)
    }

    /// Reads the lines of an open file (standard input, a sniffed or decompressed file).
    package init(lines: LineReader, properties: [String] = []) {
        self.lines = lines
        stem = fileStem(lines.path)
        self.properties = properties
    }

    /// What a frame's comment line says: its id and property values, the atom lines'
    /// columns, a recorded net charge, and whether it is a QM9 original (3 lines follow
    /// its atoms).
    private struct FrameHeader {
        var id: String
        var properties: [Double] = []
        var speciesColumn = 0, posColumn = 1, minColumns = 4
        var chargeColumn: Int? = nil
        var totalCharge: Int? = nil
        var qm9 = false
    }

    /// A frame's atoms: elements, positions (Å), each atom's line, the charge column's values.
    private struct FrameAtoms {
        var atomicNumbers = [Int](), positions = [SIMD3<Double>](), lines = [Int](), charges = [Double]()
    }

    public func next() throws -> Molecule? {
        var countLine: String? = nil
        while let l = try lines.nextLine() {
            if !l.trimmingCharacters(in: .whitespaces).isEmpty { countLine = l; break }
        }
        guard let cl = countLine else { return nil }
        let startLine = lines.lineNumber
        let ct = tokens(cl)
        guard ct.count == 1, let n = Int(ct[0]), n > 0 else {
            throw lines.error("expected the number of atoms, found '\(excerpt(cl.trimmingCharacters(in: .whitespaces)))'")
        }
        guard let comment = try lines.nextLine() else {
            throw lines.error("file ends before the comment line of frame \(frame + 1)")
        }
        frame += 1
        let commentLine = lines.lineNumber
        var header = try self.header(comment.trimmingCharacters(in: .whitespaces))
        let atoms = try readAtoms(n, header)
        if header.qm9 {
            // Frequencies, SMILES, InChI.
            for what in ["harmonic frequencies", "SMILES", "InChI"] {
                guard try lines.nextLine() != nil else {
                    throw lines.error("QM9 file ends before its \(what) line (line \(commentLine) is a 'gdb' line, so 3 lines follow the atoms)")
                }
            }
        }
        // A charge column of whole numbers holds formal charges; otherwise (partial charges)
        // only a whole-numbered sum is a recorded net charge.
        var formal = [Int]()
        if !atoms.charges.isEmpty {
            if atoms.charges.allSatisfy({ $0 == $0.rounded() && abs($0) < 100 }) { formal = atoms.charges.map { Int($0) } }
            else {
                let sum = atoms.charges.reduce(0, +)
                if header.totalCharge == nil, abs(sum - sum.rounded()) < 0.01, abs(sum) < 1000 { header.totalCharge = Int(sum.rounded()) }
            }
        }
        if formal.allSatisfy({ $0 == 0 }) { formal = [] }
        let m = Molecule(id: header.id, atomicNumbers: atoms.atomicNumbers, positions: atoms.positions,
                         properties: header.properties, formalCharges: formal, charge: header.totalCharge)
        try validate(m, file: lines.path, line: startLine)
        try seen.check(header.id, file: lines.path, line: startLine)
        moleculeLine = startLine
        atomLines = atoms.lines
        return m
    }

    /// The header of the current frame from its comment line (trimmed): a QM9 original's
    /// "gdb N" line, extended XYZ's key=value pairs, or a plain XYZ's id.
    private func header(_ comment: String) throws -> FrameHeader {
        let fallbackID = frame == 1 ? stem : "\(stem)_\(frame)"
        if let gdb = try QM9Quantity.gdbLine(tokens(comment), error: { lines.error($0) }) {
            return try qm9Header(index: gdb.index, values: gdb.values)
        }
        if comment.contains("=") { return try extendedHeader(comment, fallbackID: fallbackID) }
        if !properties.isEmpty {
            throw lines.error("the comment line has no key=value fields, so property '\(properties[0])' cannot be read (extended XYZ expected)")
        }
        return FrameHeader(id: comment.isEmpty ? fallbackID : comment)
    }

    /// A QM9 original: the id dsgdb9nsd_NNNNNN and the requested quantities of the gdb line.
    private func qm9Header(index: Int, values: [Double]) throws -> FrameHeader {
        var h = FrameHeader(id: qm9ID(index))
        h.qm9 = true
        for name in properties {
            guard let q = QM9Quantity(name: name) else {
                throw lines.error("QM9 files have no property '\(name)' (they have \(QM9Quantity.names.joined(separator: " ")))")
            }
            h.properties.append(values[q.rawValue])
        }
        return h
    }

    /// Extended XYZ: the id (`id` or `name` key), the atom-line columns (`Properties`), the
    /// net charge and the requested properties from the comment's key=value pairs.
    private func extendedHeader(_ comment: String, fallbackID: String) throws -> FrameHeader {
        let fields = try parseKeyValues(comment)
        var h = FrameHeader(id: fallbackID)
        if let v = fields["id"] ?? fields["name"] ?? fields["ID"] ?? fields["Name"], !v.isEmpty { h.id = v }
        if let spec = fields["Properties"] ?? fields["properties"] {
            (h.speciesColumn, h.posColumn, h.minColumns, h.chargeColumn) = try parseColumns(spec)
        }
        if let c = fields["charge"] ?? fields["total_charge"] ?? fields["Charge"] {
            guard let q = Double(c), q == q.rounded(), abs(q) < 1000 else {
                throw lines.error("charge=\(excerpt(c)) is not an integer")
            }
            h.totalCharge = Int(q)
        }
        for name in properties {
            guard let v = fields[name] else {
                throw lines.error("frame \(frame) has no property '\(name)' (keys: \(fields.keys.sorted().joined(separator: " ")))")
            }
            let parts = tokens(v)
            guard !parts.isEmpty else { throw lines.error("property '\(name)' is empty") }
            for p in parts {
                guard let x = parseNumber(p) else {
                    throw lines.error("property '\(name)' is not a number: '\(excerpt(v))'")
                }
                h.properties.append(x)
            }
        }
        return h
    }

    /// The frame's n atom lines, in the columns the header names.
    private func readAtoms(_ n: Int, _ h: FrameHeader) throws -> FrameAtoms {
        var atoms = FrameAtoms()
        // The count comes from the file: reserve no more than a plausible molecule needs.
        atoms.atomicNumbers.reserveCapacity(min(n, 4096)); atoms.positions.reserveCapacity(min(n, 4096))
        atoms.lines.reserveCapacity(min(n, 4096))
        for i in 0..<n {
            guard let l = try lines.nextLine() else {
                throw lines.error("file ends after \(i) of \(n) atoms of frame \(frame)")
            }
            let t = tokens(l)
            if h.speciesColumn == 0 && h.posColumn == 1 && h.chargeColumn == nil {
                let (z, p) = try parseAtomLine(t, allowExtra: true, lines: lines)
                atoms.atomicNumbers.append(z); atoms.positions.append(p)
            } else {
                guard t.count >= h.minColumns else {
                    throw lines.error("expected \(h.minColumns) columns (from Properties=), found \(t.count)")
                }
                let (z, p) = try parseAtomLine([t[h.speciesColumn], t[h.posColumn], t[h.posColumn + 1], t[h.posColumn + 2]],
                                               allowExtra: false, lines: lines)
                atoms.atomicNumbers.append(z); atoms.positions.append(p)
                if let c = h.chargeColumn {
                    guard let q = parseNumber(t[c]) else { throw lines.error("charge '\(excerpt(t[c]))' is not a number") }
                    atoms.charges.append(q)
                }
            }
            atoms.lines.append(lines.lineNumber)
        }
        return atoms
    }

    /// Splits `key=value key="quoted value" flag` into a dictionary (flags map to "T").
    private func parseKeyValues(_ s: String) throws -> [String: String] {
        var out = [String: String]()
        let b = Array(s.utf8)
        var i = 0
        func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 }
        while i < b.count {
            while i < b.count && isSpace(b[i]) { i += 1 }
            if i >= b.count { break }
            let ks = i
            while i < b.count && b[i] != UInt8(ascii: "=") && !isSpace(b[i]) { i += 1 }
            let key = String(decoding: b[ks..<i], as: UTF8.self)
            var j = i
            while j < b.count && isSpace(b[j]) { j += 1 }
            if j < b.count && b[j] == UInt8(ascii: "=") {
                i = j + 1
                while i < b.count && isSpace(b[i]) { i += 1 }
                var value = [UInt8]()
                if i < b.count && (b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") || b[i] == UInt8(ascii: "{")) {
                    let close = b[i] == UInt8(ascii: "{") ? UInt8(ascii: "}") : b[i]
                    i += 1
                    while i < b.count && b[i] != close {
                        if b[i] == UInt8(ascii: "\\") && i + 1 < b.count { i += 1 }
                        value.append(b[i]); i += 1
                    }
                    guard i < b.count else { throw lines.error("unterminated quoted value of key '\(key)' in the comment line") }
                    i += 1
                } else {
                    while i < b.count && !isSpace(b[i]) { value.append(b[i]); i += 1 }
                }
                out[key] = String(decoding: value, as: UTF8.self)
            } else {
                if key.isEmpty { throw lines.error("'=' without a key in the comment line") }
                out[key] = "T"
            }
        }
        return out
    }

    /// Parses `Properties=species:S:1:pos:R:3:...` into the species and position columns.
    private func parseColumns(_ spec: String) throws -> (Int, Int, Int, Int?) {
        let parts = spec.split(separator: ":")
        guard parts.count % 3 == 0 else { throw lines.error("malformed Properties='\(spec)': expected name:type:count triples") }
        var column = 0
        var species: Int? = nil, pos: Int? = nil, charge: Int? = nil
        for k in stride(from: 0, to: parts.count, by: 3) {
            guard let count = Int(parts[k + 2]), count > 0 else {
                throw lines.error("malformed Properties='\(spec)': bad column count '\(parts[k + 2])'")
            }
            let name = parts[k].lowercased()
            if name == "species" || (name == "z" && species == nil) { species = column }
            if name == "pos" || name == "positions" {
                guard count == 3 else { throw lines.error("Properties='\(spec)': pos must have 3 columns") }
                pos = column
            }
            if ["initial_charges", "charges", "charge", "formal_charges", "formal_charge"].contains(name) && count == 1 { charge = column }
            column += count
        }
        guard let s = species, let p = pos else {
            throw lines.error("Properties='\(spec)' lacks species or pos columns")
        }
        return (s, p, column, charge)
    }
}
