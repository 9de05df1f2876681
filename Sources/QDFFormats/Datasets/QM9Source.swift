// Reading QM9 as distributed (Ramakrishnan et al., Sci. Data 1, 140022 (2014)):
//
// - the original archive dsgdb9nsd.xyz.tar.bz2 (or .tar, or a folder of its .xyz files):
//   one file per molecule, "gdb N" line with 15 properties, atoms with Mulliken charges,
//   "*^" exponents, then frequencies, SMILES and InChI lines;
// - the qm9pack wheel (qm9pack-*.whl, a zip), an unpacked copy, or its CSV files
//   (qm9pack/data/qm9_part{1,2,3}.csv: columns XYZ_file, Index, Elements, XYZ_Ang,
//   HOMO_au, LUMO_au, InternalEnergy_0K_au, ...; CSVs without XYZ_Ang, such as
//   qm9_polarizability.csv, are skipped when found inside a wheel or folder).
//
// A record keeps each coordinate's text as written in the source (normalized: "*^" and
// "E" exponents become "e", a trailing "." gains a "0"), so datasets can be written with
// the source's digits as well as with shortest round-trip numbers.

import Foundation
import QuantumDeepField

/// One QM9 molecule: atoms, coordinates and QM9's quantities (QM9's units).
public struct QM9Record: Sendable {
    /// QM9's index (1 ... 133885).
    public var index: Int
    /// "dsgdb9nsd_NNNNNN".
    public var id: String
    public var atomicNumbers: [Int]
    public var positions: [SIMD3<Double>]
    /// 3 per atom (x, y, z), as written in the source, normalized.
    public var coordinateText: [String]
    /// QM9's 15 quantities indexed by `QM9Quantity.rawValue`, in QM9's units; nil where the
    /// source has no such column (a CSV without it). U0, HOMO and LUMO are always present.
    public var quantities: [Double?]
    /// Where it was read ("file:line" or "archive!entry"), for error messages.
    public var origin: String

    public var atomCount: Int { atomicNumbers.count }

    /// U0, the internal energy at 0 K (Hartree).
    public var u0: Double {
        get { quantities[QM9Quantity.U0.rawValue]! }
        set { quantities[QM9Quantity.U0.rawValue] = newValue }
    }
    /// HOMO energy (Hartree).
    public var homo: Double {
        get { quantities[QM9Quantity.homo.rawValue]! }
        set { quantities[QM9Quantity.homo.rawValue] = newValue }
    }
    /// LUMO energy (Hartree).
    public var lumo: Double {
        get { quantities[QM9Quantity.lumo.rawValue]! }
        set { quantities[QM9Quantity.lumo.rawValue] = newValue }
    }

    /// A quantity in QM9's units, nil if the source lacked it.
    public subscript(_ q: QM9Quantity) -> Double? { quantities[q.rawValue] }

    /// A record; `coordinateText` defaults to the shortest form of each coordinate.
    /// `quantities` (15 values indexed by `QM9Quantity`) defaults to U0, HOMO and LUMO only;
    /// when given, its U0, HOMO and LUMO entries are replaced by `u0`, `homo`, `lumo`.
    public init(index: Int, atomicNumbers: [Int], positions: [SIMD3<Double>], coordinateText: [String]? = nil,
                u0: Double, homo: Double, lumo: Double, quantities: [Double?]? = nil, origin: String) {
        precondition(atomicNumbers.count == positions.count, "one position per atom")
        precondition(quantities == nil || quantities!.count == QM9Quantity.allCases.count, "15 QM9 quantities")
        self.index = index
        self.id = qm9ID(index)
        self.atomicNumbers = atomicNumbers
        self.positions = positions
        self.coordinateText = coordinateText ?? positions.flatMap { [pythonRepr($0.x), pythonRepr($0.y), pythonRepr($0.z)] }
        self.quantities = quantities ?? [Double?](repeating: nil, count: QM9Quantity.allCases.count)
        self.origin = origin
        self.u0 = u0; self.homo = homo; self.lumo = lumo
    }
}

/// The canonical QM9 id of an index: 1 -> "dsgdb9nsd_000001".
public func qm9ID(_ index: Int) -> String {
    let d = String(index)
    return "dsgdb9nsd_" + String(repeating: "0", count: max(0, 6 - d.count)) + d
}

/// The index of a QM9 id ("dsgdb9nsd_000001", "dsgdb9nsd_000001.xyz", "000001", "1").
public func qm9Index(_ s: some StringProtocol) -> Int? {
    var t = Substring(s)
    if t.hasSuffix(".xyz") { t = t.dropLast(4) }
    if t.hasPrefix("dsgdb9nsd_") { t = t.dropFirst(10) }
    guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(t), v > 0 else { return nil }
    return v
}

/// Normalizes a number's source text: "*^" or "E" exponents become "e"; "0." becomes
/// "0.0" and "4.E-6" becomes "4.0e-6".
func normalizedNumberText(_ s: Substring) -> String {
    // Fast path (nearly every coordinate): no exponent, no trailing point.
    var special = false
    for b in s.utf8 where b == UInt8(ascii: "*") || b == UInt8(ascii: "E") { special = true; break }
    if !special && s.utf8.last != UInt8(ascii: ".") { return String(s) }
    var out = [UInt8]()
    var bytes = Array(s.utf8)
    if let k = bytes.firstIndex(of: UInt8(ascii: "*")), k + 1 < bytes.count, bytes[k + 1] == UInt8(ascii: "^") {
        bytes.replaceSubrange(k...(k + 1), with: [UInt8(ascii: "e")])
    }
    for (k, b) in bytes.enumerated() {
        let isExp = b == UInt8(ascii: "E") || b == UInt8(ascii: "e")
        if isExp && k > 0 && bytes[k - 1] == UInt8(ascii: ".") { out.append(UInt8(ascii: "0")) }
        out.append(isExp ? UInt8(ascii: "e") : b)
    }
    if out.last == UInt8(ascii: ".") { out.append(UInt8(ascii: "0")) }
    return String(decoding: out, as: UTF8.self)
}

public enum QM9Source {
    /// Reads every molecule from one or more sources (archive, wheel, folder, CSV or XYZ
    /// files). `progress` receives a line per file read.
    public static func read(_ paths: [String], progress: (String) -> Void = { _ in }) throws -> [QM9Record] {
        var out = [QM9Record]()
        for p in paths { try read(p, into: &out, progress: progress) }
        return out
    }

    static func read(_ path: String, into out: inout [QM9Record], progress: (String) -> Void) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw QDFError("no such file or folder", file: path)
        }
        let lower = path.lowercased()
        if isDir.boolValue {
            guard let walker = FileManager.default.enumerator(atPath: path) else {
                throw QDFError("cannot list the folder", file: path)
            }
            var csvs = [String](), xyzs = [String]()
            for case let rel as String in walker {
                let l = rel.lowercased()
                if l.hasSuffix(".csv") { csvs.append(path + "/" + rel) }
                else if l.hasSuffix(".xyz") { xyzs.append(path + "/" + rel) }
            }
            if csvs.isEmpty && xyzs.isEmpty {
                throw QDFError("no QM9 files here (expected qm9pack CSV files or dsgdb9nsd_*.xyz files)", file: path)
            }
            var used = 0
            for c in csvs.sorted() {
                let reader = try openLines(c)
                if try readCSV(reader, name: c, into: &out, requireColumns: false) { used += 1; progress("read \(c)") }
            }
            if !csvs.isEmpty && used == 0 && xyzs.isEmpty {
                throw QDFError("none of the CSV files has QM9 coordinates (an XYZ_Ang column)", file: path)
            }
            for x in xyzs.sorted() {
                let data = try Data(contentsOf: URL(fileURLWithPath: x))
                try parseOriginalXYZ([UInt8](data), name: x, into: &out)
            }
            if !xyzs.isEmpty { progress("read \(xyzs.count) .xyz files in \(path)") }
        } else if lower.hasSuffix(".whl") || lower.hasSuffix(".zip") {
            let zip = try ZipArchive(path: path)
            var used = 0
            for e in zip.entries.sorted(by: { $0.name < $1.name }) where e.name.lowercased().hasSuffix(".csv") {
                let name = "\(path)!\(e.name)"
                let reader = try LineReader(path: name, source: zip.open(e))
                if try readCSV(reader, name: name, into: &out, requireColumns: false) { used += 1; progress("read \(name)") }
            }
            var xyz = 0
            for e in zip.entries.sorted(by: { $0.name < $1.name }) where e.name.lowercased().hasSuffix(".xyz") {
                let src = try zip.open(e)
                var bytes = [UInt8](repeating: 0, count: e.size)
                let n = try bytes.withUnsafeMutableBytes { try readFully(src, into: $0.baseAddress!, count: e.size) }
                var probe: UInt8 = 0
                _ = try src.read(into: &probe, count: 1)  // at the end: checks size and CRC-32
                src.close()
                bytes.removeLast(e.size - n)
                try parseOriginalXYZ(bytes, name: "\(path)!\(e.name)", into: &out)
                xyz += 1
            }
            if used == 0 && xyz == 0 {
                throw QDFError("the archive holds no QM9 CSV (with an XYZ_Ang column) or .xyz files", file: path)
            }
        } else if lower.hasSuffix(".tar") || lower.hasSuffix(".tar.bz2") || lower.hasSuffix(".tbz2")
                    || lower.hasSuffix(".tbz") || lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") {
            let raw: ByteSource
            if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") { raw = try GzipByteSource(path: path) }
            else if lower.hasSuffix(".tar") { raw = try FileByteSource(path: path) }
            else { raw = try Bzip2ByteSource(input: FileByteSource(path: path), name: path) }
            let tar = TarReader(source: raw, name: path)
            defer { tar.close() }
            var count = 0
            while let e = try tar.next() {
                guard e.isFile, e.name.lowercased().hasSuffix(".xyz") else { continue }
                try parseOriginalXYZ(tar.readData(), name: "\(path)!\(e.name)", into: &out)
                count += 1
            }
            if count == 0 { throw QDFError("the archive holds no .xyz files", file: path) }
            progress("read \(count) .xyz files from \(path)")
        } else if lower.hasSuffix(".csv") || lower.hasSuffix(".csv.gz") {
            _ = try readCSV(openLines(path), name: path, into: &out, requireColumns: true)
            progress("read \(path)")
        } else if lower.hasSuffix(".xyz") {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try parseOriginalXYZ([UInt8](data), name: path, into: &out)
        } else {
            throw QDFError("not a QM9 source: expected dsgdb9nsd.xyz.tar.bz2 (or .tar), a folder of .xyz files, the qm9pack wheel (.whl), a folder holding its CSV files, or a .csv file", file: path)
        }
    }

    // MARK: CSV (qm9pack)

    /// Reads a qm9pack CSV; returns false (reading nothing) when it lacks the QM9 columns
    /// and `requireColumns` is false.
    static func readCSV(_ lines: LineReader, name: String, into out: inout [QM9Record],
                        requireColumns: Bool) throws -> Bool {
        guard let headerLine = try lines.nextLine() else {
            if requireColumns { throw QDFError("empty file", file: name) }
            return false
        }
        let header = try csvFields(headerLine, lines: lines).map { String(decoding: $0, as: UTF8.self) }
        func column(_ n: String) -> Int? { header.firstIndex(of: n) }
        guard let cXYZ = column("XYZ_Ang") else {
            if requireColumns { throw lines.error("not a qm9pack CSV: no XYZ_Ang column (columns: \(header.joined(separator: ", ")))") }
            return false
        }
        var missing = [String]()
        let cElements = column("Elements"), cU0 = column("InternalEnergy_0K_au")
        let cHomo = column("HOMO_au"), cLumo = column("LUMO_au")
        let cFile = column("XYZ_file"), cIndex = column("Index"), cN = column("N_atoms")
        if cElements == nil { missing.append("Elements") }
        if cU0 == nil { missing.append("InternalEnergy_0K_au") }
        if cHomo == nil { missing.append("HOMO_au") }
        if cLumo == nil { missing.append("LUMO_au") }
        if cFile == nil && cIndex == nil { missing.append("XYZ_file or Index") }
        guard missing.isEmpty else { throw lines.error("qm9pack CSV lacks column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", "))") }
        // The other quantities: optional columns (nil in the records when absent).
        let optional: [(QM9Quantity, Int)] = QM9Quantity.allCases.compactMap { q in
            guard q != .U0, q != .homo, q != .lumo else { return nil }
            return q.csvColumns.lazy.compactMap(column).first.map { (q, $0) }
        }
        let width = header.count
        while let line = try lines.nextLine() {
            if line.isEmpty { continue }
            let f = try csvFields(line, lines: lines)
            guard f.count == width else {
                throw lines.error("expected \(width) fields as in the header, found \(f.count)")
            }
            func text(_ c: Int) -> String { String(decoding: f[c], as: UTF8.self) }
            func number(_ c: Int, _ what: String) throws -> Double {
                guard let v = parseNumber(Substring(text(c))) else {
                    throw lines.error("\(what) is not a number: '\(text(c))'")
                }
                return v
            }
            // Id and index.
            var index: Int? = nil
            if let c = cFile { index = qm9Index(text(c)) }
            if index == nil, let c = cIndex { index = Int(text(c)) }
            guard let idx = index else {
                throw lines.error("cannot read the molecule's QM9 index from '\(cFile.map(text) ?? text(cIndex!))'")
            }
            if let c = cIndex, let other = Int(text(c)), other != idx {
                throw lines.error("XYZ_file says molecule \(idx), Index says \(other)")
            }
            // Elements: ['C','H',...]
            var zs = [Int]()
            var sym = [UInt8]()
            for b in f[cElements!] {
                if (b >= 65 && b <= 90) || (b >= 97 && b <= 122) { sym.append(b) }
                else if !sym.isEmpty {
                    let s = String(decoding: sym, as: UTF8.self)
                    guard let z = Element.atomicNumber(s) else { throw lines.error("unknown element symbol '\(s)'") }
                    zs.append(z); sym.removeAll(keepingCapacity: true)
                }
            }
            if !sym.isEmpty {
                let s = String(decoding: sym, as: UTF8.self)
                guard let z = Element.atomicNumber(s) else { throw lines.error("unknown element symbol '\(s)'") }
                zs.append(z)
            }
            // Coordinates: [[x,y,z],[x,y,z],...]
            var texts = [String]()
            texts.reserveCapacity(zs.count * 3)
            var values = [Double]()
            values.reserveCapacity(zs.count * 3)
            let field = f[cXYZ]
            var i = field.startIndex
            while i < field.endIndex {
                let b = field[i]
                if b == UInt8(ascii: "[") || b == UInt8(ascii: "]") || b == UInt8(ascii: ",") || b == 32 { i += 1; continue }
                let s = i
                while i < field.endIndex, field[i] != UInt8(ascii: ","), field[i] != UInt8(ascii: "]") { i += 1 }
                let tok = Substring(String(decoding: field[s..<i], as: UTF8.self))
                guard let v = parseNumber(tok) else { throw lines.error("coordinate is not a finite number: '\(tok)'") }
                values.append(v)
                texts.append(normalizedNumberText(tok))
            }
            guard values.count == zs.count * 3, !zs.isEmpty else {
                throw lines.error("molecule \(qm9ID(idx)): \(zs.count) elements but \(values.count) coordinates (expected 3 per atom)")
            }
            if let c = cN, let n = Int(text(c)), n != zs.count {
                throw lines.error("molecule \(qm9ID(idx)): N_atoms is \(n) but \(zs.count) elements are listed")
            }
            var ps = [SIMD3<Double>]()
            ps.reserveCapacity(zs.count)
            for a in 0..<zs.count { ps.append(SIMD3(values[3 * a], values[3 * a + 1], values[3 * a + 2])) }
            var qs = [Double?](repeating: nil, count: QM9Quantity.allCases.count)
            for (q, c) in optional { qs[q.rawValue] = try number(c, header[c]) }
            out.append(QM9Record(index: idx, atomicNumbers: zs, positions: ps, coordinateText: texts,
                                 u0: try number(cU0!, "InternalEnergy_0K_au"),
                                 homo: try number(cHomo!, "HOMO_au"), lumo: try number(cLumo!, "LUMO_au"),
                                 quantities: qs, origin: "\(name):\(lines.lineNumber)"))
        }
        return true
    }

    /// Splits a CSV line into fields (RFC 4180 quoting: "..." with "" for a quote).
    static func csvFields(_ line: String, lines: LineReader) throws -> [ArraySlice<UInt8>] {
        let bytes = Array(line.utf8)
        var fields = [ArraySlice<UInt8>]()
        var i = 0
        while true {
            if i < bytes.count && bytes[i] == UInt8(ascii: "\"") {
                var j = i + 1
                var hasEscapes = false
                while true {
                    guard j < bytes.count else { throw lines.error("unterminated quoted field (field \(fields.count + 1))") }
                    if bytes[j] == UInt8(ascii: "\"") {
                        if j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "\"") { hasEscapes = true; j += 2; continue }
                        break
                    }
                    j += 1
                }
                if hasEscapes {
                    var v = [UInt8]()
                    var k = i + 1
                    while k < j { v.append(bytes[k]); k += bytes[k] == UInt8(ascii: "\"") ? 2 : 1 }
                    fields.append(v[...])
                } else {
                    fields.append(bytes[(i + 1)..<j])
                }
                i = j + 1
                if i < bytes.count && bytes[i] != UInt8(ascii: ",") {
                    throw lines.error("unexpected text after the closing quote of field \(fields.count)")
                }
            } else {
                var j = i
                while j < bytes.count && bytes[j] != UInt8(ascii: ",") { j += 1 }
                fields.append(bytes[i..<j])
                i = j
            }
            if i >= bytes.count { break }
            i += 1  // the comma
            if i == bytes.count { fields.append([][...]); break }
        }
        return fields
    }

    // MARK: Original XYZ (dsgdb9nsd_NNNNNN.xyz)

    /// Parses one original QM9 .xyz file.
    static func parseOriginalXYZ(_ bytes: [UInt8], name: String, into out: inout [QM9Record]) throws {
        // Split on bytes (a Character-level split costs more than the parsing).
        var lines = [Substring]()
        lines.reserveCapacity(32)
        var start = 0
        for k in 0...bytes.count where k == bytes.count || bytes[k] == 10 {
            var end = k
            if end > start && bytes[end - 1] == 13 { end -= 1 }
            lines.append(Substring(String(decoding: bytes[start..<end], as: UTF8.self)))
            start = k + 1
        }
        func err(_ line: Int, _ msg: String) -> QDFError { QDFError(msg, file: name, line: line) }
        func toks(_ s: Substring) -> [Substring] { s.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
        guard lines.count >= 2 else { throw err(1, "not a QM9 .xyz file: fewer than 2 lines") }
        let ct = toks(lines[0])
        guard ct.count == 1, let n = Int(ct[0]), n > 0 else {
            throw err(1, "expected the number of atoms, found '\(lines[0])'")
        }
        let g = toks(lines[1])
        guard let gdb = try QM9Quantity.gdbLine(g, error: { err(2, $0) }) else {
            throw err(2, "expected 'gdb N' and 15 property values (QM9's line 2), found \(g.count) fields")
        }
        let (index, props) = gdb
        guard lines.count >= 2 + n else {
            throw err(lines.count, "file ends after \(lines.count - 2) of \(n) atoms")
        }
        var zs = [Int](), ps = [SIMD3<Double>](), texts = [String]()
        for a in 0..<n {
            let t = toks(lines[2 + a])
            guard t.count == 5 || t.count == 4 else {
                throw err(3 + a, "expected 'Element x y z charge', found \(t.count) fields")
            }
            guard let z = Element.atomicNumber(t[0]) else { throw err(3 + a, "unknown element symbol '\(t[0])'") }
            var p = SIMD3<Double>()
            for k in 0..<3 {
                guard let v = parseNumber(t[k + 1]) else {
                    throw err(3 + a, "coordinate \(["x", "y", "z"][k]) is not a finite number: '\(t[k + 1])'")
                }
                p[k] = v
                texts.append(normalizedNumberText(t[k + 1]))
            }
            zs.append(z); ps.append(p)
        }
        // Frequencies, SMILES and InChI follow; their absence means a truncated file.
        let trailing = lines[(2 + n)...].filter { $0.utf8.contains { $0 != 32 && $0 != 9 } }.count
        guard trailing >= 3 else {
            throw err(lines.count, "QM9 file ends before its frequency, SMILES and InChI lines (truncated?)")
        }
        let stem = fileStem(String(name.split(separator: "!").last ?? Substring(name)))
        if let fromName = qm9Index(stem), fromName != index {
            throw err(2, "the file name says molecule \(fromName), its 'gdb' line says \(index)")
        }
        // The gdb line's values are QM9Quantity's order: homo 5, lumo 6, U0 10.
        out.append(QM9Record(index: index, atomicNumbers: zs, positions: ps, coordinateText: texts,
                             u0: props[10], homo: props[5], lumo: props[6], quantities: props, origin: "\(name):2"))
    }
}
