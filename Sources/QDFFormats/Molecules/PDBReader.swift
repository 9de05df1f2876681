import QuantumDeepField
// Protein Data Bank files (.pdb, .ent) and AutoDock's PDBQT (.pdbqt), as RDKit
// (MolToPDBFile), Open Babel and ASE write them. Only coordinate records are read:
//
//     COMPND    aspirin                                  <- the molecule's id (else the file stem)
//     MODEL        1                                     <- one molecule per MODEL ... ENDMDL
//     HETATM    1  C1  UNL     1       1.234   0.123  -0.456  1.00  0.00           C
//     ATOM      2  O1- UNL     1       ...                                        O1-
//     ENDMDL                                             <- (without MODEL: one molecule up to END)
//
// Columns (1-based): x 31-38, y 39-46, z 47-54 (Å), element 77-78, formal charge 79-80
// ("1-", "2+"). Without an element the atom name (13-16) gives it (PDB convention: a
// one-letter element is in column 14). PDBQT: partial charge in 71-76 and the AutoDock
// atom type in 78-79 (A → C, HD/HS → H, NA/NS → N, OA/OS → O, SA → S); a whole-numbered
// sum of the partial charges is recorded as the net charge.

public final class PDBReader: MoleculeReader {
    private let lines: LineReader
    private let stem: String
    private let pdbqt: Bool
    private var seen = SeenIDs()
    private var model = 0
    private var name: String? = nil
    private var finished = false
    private var sawModel = false
    private var modelName: String? = nil
    public var path: String { lines.path }
    public private(set) var moleculeLine = 0
    /// The line of each atom of the molecule `next()` returned last.
    public private(set) var atomLines: [Int] = []

    /// Reads a PDB file (`pdbqt`: AutoDock's PDBQT columns).
    public convenience init(path: String, pdbqt: Bool? = nil) throws {
        self.init(lines: try openLines(path), pdbqt: pdbqt ?? path.lowercased().contains(".pdbqt"))
    }

    /// Reads the lines of an open file.
    package init(lines: LineReader, pdbqt: Bool = false) {
        self.lines = lines
        self.pdbqt = pdbqt
        stem = fileStem(lines.path)
    }

    public func next() throws -> Molecule? {
        if finished { return nil }
        var zs = [Int](), ps = [SIMD3<Double>](), lineOfAtom = [Int](), charges = [Int](), partial = [Double]()
        var start = 0
        while let l = try lines.nextLine() {
            let b = Array(l.utf8)
            let record = b.count >= 6 ? String(decoding: b[0..<6], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                                      : l.trimmingCharacters(in: .whitespaces)
            switch record {
            case "COMPND", "TITLE":
                if (name == nil || sawModel), b.count > 10 {
                    var t = String(decoding: b[10...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    if t.hasPrefix("MOLECULE:") { t = String(t.dropFirst(9)).trimmingCharacters(in: .whitespaces) }
                    if t.hasSuffix(";") { t.removeLast() }
                    if !t.isEmpty && !t.hasPrefix("UNNAMED") {
                        if sawModel { if modelName == nil { modelName = t } } else { name = t }
                    }
                }
            case "MODEL":
                if !zs.isEmpty { throw lines.error("MODEL inside a model (ENDMDL missing?)") }
                sawModel = true; start = lines.lineNumber; modelName = nil
            case "ATOM", "HETATM":
                if zs.isEmpty && start == 0 { start = lines.lineNumber }
                let (z, p, q, pq) = try atom(b)
                zs.append(z); ps.append(p); lineOfAtom.append(lines.lineNumber); charges.append(q)
                if let x = pq { partial.append(x) }
            case "ENDMDL":
                if !zs.isEmpty { return try finish(zs, ps, lineOfAtom, charges, partial, start, model: true) }
            case "END":
                finished = true
                if !zs.isEmpty { return try finish(zs, ps, lineOfAtom, charges, partial, start, model: sawModel) }
                return nil
            default: break
            }
        }
        finished = true
        if !zs.isEmpty { return try finish(zs, ps, lineOfAtom, charges, partial, start, model: sawModel) }
        if model == 0 { throw QDFError("no ATOM or HETATM records", file: lines.path) }
        return nil
    }

    private func finish(_ zs: [Int], _ ps: [SIMD3<Double>], _ lineOfAtom: [Int], _ charges: [Int],
                        _ partial: [Double], _ start: Int, model isModel: Bool) throws -> Molecule {
        model += 1
        let base = name ?? stem
        let id: String = modelName ?? (isModel ? "\(base)_\(model)" : base)
        modelName = nil
        var total: Int? = nil
        if partial.count == zs.count {
            let s = partial.reduce(0, +)
            if abs(s - s.rounded()) < 0.01, abs(s) < 1000, s.rounded() != 0 { total = Int(s.rounded()) }
        }
        let m = Molecule(id: id, atomicNumbers: zs, positions: ps, formalCharges: charges.allSatisfy { $0 == 0 } ? [] : charges,
                         charge: total ?? (charges.allSatisfy { $0 == 0 } ? nil : charges.reduce(0, +)))
        try validate(m, file: lines.path, line: start)
        try seen.check(id, file: lines.path, line: start)
        moleculeLine = start
        atomLines = lineOfAtom
        return m
    }

    /// Element, position, formal charge and (PDBQT) partial charge of an ATOM/HETATM line.
    private func atom(_ b: [UInt8]) throws -> (Int, SIMD3<Double>, Int, Double?) {
        func col(_ from: Int, _ to: Int) -> String {  // 1-based, inclusive
            guard b.count >= from else { return "" }
            return String(decoding: b[(from - 1)..<min(to, b.count)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
        guard b.count >= 54 else {
            throw lines.error("ATOM/HETATM line too short for coordinates (columns 31-54), \(b.count) characters")
        }
        var p = SIMD3<Double>()
        for (k, r) in [(31, 38), (39, 46), (47, 54)].enumerated() {
            guard let v = parseNumber(Substring(col(r.0, r.1))) else {
                throw lines.error("coordinate \(["x", "y", "z"][k]) (columns \(r.0)-\(r.1)) is not a finite number: '\(excerpt(col(r.0, r.1)))'")
            }
            p[k] = v
        }
        var symbol: String
        var partial: Double? = nil
        if pdbqt {
            symbol = col(78, 79)
            let map = ["A": "C", "HD": "H", "HS": "H", "NA": "N", "NS": "N", "OA": "O", "OS": "O", "SA": "S", "CL": "Cl", "BR": "Br"]
            symbol = map[symbol.uppercased()] ?? symbol
            partial = Double(col(71, 76))
        } else {
            symbol = col(77, 78)
        }
        if symbol.isEmpty {
            // From the atom name: letters of columns 13-14 (a blank column 13 means one letter).
            let name = b.count >= 14 ? Array(b[12..<14]) : []
            let letters = name.filter { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }
            symbol = name.first == 32 || letters.count < 2 ? String(decoding: letters.prefix(1), as: UTF8.self)
                                                           : String(decoding: letters, as: UTF8.self)
        }
        guard let z = Element.atomicNumber(symbol) else {
            throw lines.error("unknown element '\(excerpt(symbol))' (columns 77-78, or the atom name in 13-16)")
        }
        var charge = 0
        if !pdbqt {
            let c = col(79, 80)
            if !c.isEmpty {
                let digits = c.filter(\.isNumber), sign = c.contains("-") ? -1 : 1
                guard let v = Int(digits.isEmpty ? "1" : digits), c.contains("+") || c.contains("-") else {
                    throw lines.error("formal charge (columns 79-80) '\(excerpt(c))' is not like '1-' or '2+'")
                }
                charge = sign * v
            }
        }
        return (z, p, charge, partial)
    }
}
