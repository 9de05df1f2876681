import Foundation
import QuantumDeepField

// Molecule files by name or content: the reader is chosen by the extension after an
// optional compression suffix; a file whose extension names no molecule format (and
// standard input, "-") is recognised by its first lines. Formats qdf cannot read are
// refused by name, with what to do instead.

/// The molecule formats qdf reads.
public enum MoleculeFileFormat: String, Sendable, CaseIterable {
    /// The QDF text format (`.txt`).
    case qdf
    /// XYZ, extended XYZ, QM9's original `.xyz`.
    case xyz
    /// MDL molfile / SD file, V2000 or V3000.
    case sdf
    /// PDB (and PDBQT).
    case pdb
    /// Tripos mol2.
    case mol2

    /// The format a `--format`/`--input-format` value names (`xyz`, `extxyz`, `sdf`, `mol`,
    /// `pdb`, `pdbqt`, `mol2`, `qdf`, `txt`), or nil.
    public init?(name: String) {
        switch name.lowercased() {
        case "qdf", "txt", "text": self = .qdf
        case "xyz", "extxyz": self = .xyz
        case "sdf", "sd", "mol", "mdl": self = .sdf
        case "pdb", "pdbqt", "ent": self = .pdb
        case "mol2": self = .mol2
        default: return nil
        }
    }
}

/// Opens a molecule file: `.xyz`/`.extxyz`, `.sdf`/`.sd`/`.mol` (V2000 and V3000),
/// `.pdb`/`.ent`/`.pdbqt`, `.mol2`, optionally `.gz`/`.bz2` compressed; `.txt` and
/// unknown extensions by content (QDF text when nothing else matches); `"-"` is standard
/// input. Formats without 3-D coordinates or not supported (SMILES, CML, mmCIF, ...)
/// throw a `QDFError` that says so by name.
/// - Parameters:
///   - properties: names of the property values to read (extended XYZ `key=value`
///     comment fields, SDF data items, QM9 `gdb` line names such as `U0` or `homo`).
///   - format: the format to use, whatever the name or content (required for nothing;
///     standard input and odd names are sniffed when nil).
public func openMoleculeFile(_ path: String, properties: [String] = [], format: MoleculeFileFormat? = nil) throws -> MoleculeReader {
    if path == "-" {
        // With a format given nothing is read ahead: a process writing one molecule and
        // waiting for its prediction must not wait for more input.
        if let f = format {
            return try reader(f, lines: LineReader(path: standardInputName, source: StandardInputByteSource()), properties: properties)
        }
        let peek = try PeekedSource(StandardInputByteSource(), name: standardInputName)
        return try reader(peek.sniff(path: standardInputName), lines: LineReader(path: standardInputName, source: peek), properties: properties)
    }
    if format == nil, let why = unsupportedFormat(path) { throw QDFError(why, file: path) }
    var chosen = format ?? moleculeFormatByExtension(path)
    var source: ByteSource = try openByteSource(path)
    if chosen != nil && chosen != .qdf {
        // Known by its name: only refuse binary data (rather than quote it in a parse error).
        let peek = try PeekedSource(source, name: path)
        try peek.refuseBinary(path: path)
        source = peek
    } else {
        // Sniff: the extension says nothing, or .txt (which may hold anything).
        let peek = try PeekedSource(source, name: path)
        if let magic = peek.compression, !isCompressedName(path) {
            // A compressed file without .gz/.bz2 in its name: decompress, then sniff again.
            source = magic == "gzip" ? try GzipByteSource(path: path) : try Bzip2ByteSource(input: FileByteSource(path: path), name: path)
            let inner = try PeekedSource(source, name: path)
            chosen = try format ?? inner.sniff(path: path, namedQDF: chosen == .qdf)
            source = inner
        } else {
            if format == nil { chosen = try peek.sniff(path: path, namedQDF: chosen == .qdf) }
            source = peek
        }
    }
    return try reader(chosen ?? .qdf, lines: LineReader(path: path, source: source), properties: properties)
}

/// The name standard input has in messages.
public let standardInputName = "<stdin>"

private func reader(_ f: MoleculeFileFormat, lines: LineReader, properties: [String]) throws -> MoleculeReader {
    func noProperties(_ what: String) throws {
        if !properties.isEmpty {
            throw QDFError("property names (\(properties.joined(separator: ", "))) apply to XYZ and SDF files; \(what)", file: lines.path)
        }
    }
    switch f {
    case .xyz: return XYZReader(lines: lines, properties: properties)
    case .sdf: return SDFReader(lines: lines, properties: properties)
    case .pdb:
        try noProperties("PDB files have no property values")
        return PDBReader(lines: lines, pdbqt: lines.path.lowercased().contains(".pdbqt"))
    case .mol2:
        try noProperties("mol2 files have no property values")
        return Mol2Reader(lines: lines)
    case .qdf:
        try noProperties("the QDF text format has unnamed property values")
        return QDFTextReader(lines: lines)
    }
}

/// The format `openMoleculeFile` would use for a path by its extension alone (after
/// `.gz`/`.bz2`); `.qdf` for `.txt` and unknown extensions (which `openMoleculeFile`
/// recognises by content).
public func moleculeFormat(_ path: String) -> MoleculeFileFormat { moleculeFormatByExtension(path) ?? .qdf }

func moleculeFormatByExtension(_ path: String) -> MoleculeFileFormat? {
    let lower = bareName(path)
    if lower.hasSuffix(".xyz") || lower.hasSuffix(".extxyz") { return .xyz }
    if lower.hasSuffix(".sdf") || lower.hasSuffix(".sd") || lower.hasSuffix(".mol") { return .sdf }
    if lower.hasSuffix(".pdb") || lower.hasSuffix(".ent") || lower.hasSuffix(".pdbqt") { return .pdb }
    if lower.hasSuffix(".mol2") { return .mol2 }
    if lower.hasSuffix(".txt") { return .qdf }
    return nil
}

/// The lower-cased file name without folders and without `.gz`/`.bz2`.
private func bareName(_ path: String) -> String {
    var lower = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
    for c in [".gz", ".bz2"] where lower.hasSuffix(c) { lower.removeLast(c.count) }
    return lower
}

private func isCompressedName(_ path: String) -> Bool {
    let l = path.lowercased()
    return l.hasSuffix(".gz") || l.hasSuffix(".bz2")
}

private let smilesAdvice = "SMILES has no 3-D coordinates; generate a conformer first, e.g. with RDKit (AllChem.EmbedMolecule, then Chem.MolToMolFile) or Open Babel (obabel -ismi in.smi -O out.sdf --gen3d)"

/// Why a file named so cannot be read (a format qdf does not read), or nil.
func unsupportedFormat(_ path: String) -> String? {
    let name = bareName(path)
    let ext = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last!) : ""
    let convert = "convert it to SDF or XYZ first, e.g. `obabel IN -O out.sdf`"
    switch ext {
    case "smi", "smiles", "ism", "can", "cxsmiles": return smilesAdvice
    case "inchi": return "InChI has no 3-D coordinates; generate a conformer first, e.g. with RDKit or Open Babel (obabel -iinchi IN -O out.sdf --gen3d)"
    case "cml", "mrv": return "\(ext == "cml" ? "CML (Chemical Markup Language)" : "Marvin") files are not supported; \(convert)"
    case "cif", "mmcif", "pdbx", "bcif": return "CIF/mmCIF files are not supported; \(convert)"
    case "gjf", "com", "gau": return "Gaussian input files are not supported; \(convert)"
    case "log", "out": return "program output (Gaussian, ORCA, ...) is not a molecule file qdf reads; \(convert)"
    case "mae", "maegz": return "Maestro files are not supported; \(convert)"
    case "cdx", "cdxml": return "ChemDraw files hold 2-D drawings, not 3-D coordinates; generate a conformer and write SDF"
    case "zip", "tar", "tgz": return "archives are not molecule files; unpack them first"
    default: return nil
    }
}

/// Bytes of a source with its first block read ahead, so that its format can be
/// recognised before a reader consumes it; the block is then served first.
final class PeekedSource: ByteSource {
    private let inner: ByteSource
    private var head: [UInt8] = []
    private var offset = 0
    private let name: String

    /// Reads ahead until 8 lines, 8 KiB or the end of the input.
    init(_ inner: ByteSource, name: String) throws {
        self.inner = inner
        self.name = name
        var chunk = [UInt8](repeating: 0, count: 8192)
        while head.count < 8192 && head.filter({ $0 == 10 }).count < 8 {
            let n = try chunk.withUnsafeMutableBytes { try inner.read(into: $0.baseAddress!, count: 8192 - head.count) }
            if n == 0 { break }
            head += chunk[0..<n]
        }
    }

    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if offset < head.count {
            let n = min(count, head.count - offset)
            head.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        return try inner.read(into: buffer, count: count)
    }

    func close() { inner.close() }

    /// "gzip" or "bzip2" when the bytes start with that format's magic number.
    var compression: String? {
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return "gzip" }
        if head.count >= 3 && head[0] == 0x42 && head[1] == 0x5A && head[2] == 0x68 { return "bzip2" }
        return nil
    }

    /// Throws `QDFError` (file: `path`) when the first block is binary data: a NUL byte,
    /// more than 5 % control characters, or invalid UTF-8.
    func refuseBinary(path: String) throws {
        let sample = head.prefix(4096)
        let controls = sample.filter { $0 < 9 || ($0 > 13 && $0 < 32) || $0 == 127 }.count
        if sample.contains(0) || controls * 20 > max(sample.count, 1) || !validUTF8Prefix(Array(sample)) {
            let what = compression.map { "\($0)-compressed data (name the file .\($0 == "gzip" ? "gz" : "bz2"))" } ?? "binary data"
            throw QDFError("\(what), not a molecule file (starts with bytes \(hexPrefix(sample)))", file: path)
        }
    }

    /// The format the first lines show. Throws `QDFError` (file: `path`) for binary data,
    /// compressed data, SMILES and CML. A file named `.txt` (`namedQDF`) stays QDF text
    /// when it starts with a number (a QDF id may be one), unlike an unnamed input (XYZ).
    func sniff(path: String, namedQDF: Bool = false) throws -> MoleculeFileFormat {
        if let c = compression {
            throw QDFError("\(c)-compressed data: give the file a .\(c == "gzip" ? "gz" : "bz2") name, or decompress it into the pipe (\(c == "gzip" ? "zcat" : "bzcat"))", file: path)
        }
        try refuseBinary(path: path)
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        if head.count >= 8192 || (!lines.isEmpty && !text.hasSuffix("\n")) { lines.removeLast() }  // a cut line
        let nonBlank = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let first = nonBlank.first else { return .qdf }  // the reader says "no molecules"
        let firstTrim = first.trimmingCharacters(in: .whitespaces)
        if lines.contains(where: { $0.hasPrefix("@<TRIPOS>") }) { return .mol2 }
        if lines.count >= 4 && (lines[3].contains("V2000") || lines[3].contains("V3000")) { return .sdf }
        if lines.contains(where: { $0.hasPrefix("M  END") || $0.hasPrefix("$$$$") || $0.hasPrefix("M  V30") }) { return .sdf }
        let pdbRecords: Set<String> = ["HEADER", "ATOM", "HETATM", "REMARK", "MODEL", "CRYST1", "COMPND", "TITLE", "AUTHOR"]
        if let r = first.split(separator: " ").first, pdbRecords.contains(String(r)) { return .pdb }
        if !namedQDF, tokens(firstTrim).count == 1, let n = Int(firstTrim), n > 0 { return .xyz }
        if firstTrim.hasPrefix("<?xml") || firstTrim.hasPrefix("<cml") || firstTrim.hasPrefix("<molecule") {
            throw QDFError("XML (CML?) is not a molecule format qdf reads; convert it to SDF or XYZ first, e.g. `obabel IN -O out.sdf`", file: path)
        }
        // SMILES: the first token uses only SMILES characters and the next line is not an atom line.
        let second = nonBlank.dropFirst().first.map { tokens($0) } ?? []
        let secondIsAtom = second.count >= 4 && Element.atomicNumber(second[0]) != nil
        if let t = tokens(firstTrim).first, !secondIsAtom, looksLikeSMILES(t) { throw QDFError(smilesAdvice, file: path) }
        return .qdf
    }
}

private func validUTF8Prefix(_ b: [UInt8]) -> Bool {
    // Valid UTF-8 except possibly a sequence cut at the end of the sample.
    var bytes = b
    for _ in 0..<4 {
        if String(validating: bytes, as: UTF8.self) != nil { return true }
        if bytes.isEmpty { return false }
        bytes.removeLast()
    }
    return false
}

private func hexPrefix(_ b: ArraySlice<UInt8>) -> String {
    b.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
}

/// Whether a token could be a SMILES string (and is not a plain word or number).
func looksLikeSMILES(_ t: Substring) -> Bool {
    let allowed = Set("BCNOPSFIclbrnospHK[]()=#@+-/\\%0123456789.*:$aeugitdmfLMRZTAEGDUVWXY")
    guard t.count >= 2, t.allSatisfy({ allowed.contains($0) }) else { return false }
    if Double(t) != nil { return false }
    // Something only SMILES has: a bond, branch, ring closure or aromatic atom.
    return t.contains(where: { "=#()[]123456789".contains($0) }) || t.contains(where: { "cnos".contains($0) })
}

/// Standard input as a byte source (`qdf predict -`).
package final class StandardInputByteSource: ByteSource {
    /// Standard input.
    public init() {}
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
        while true {
            let n = Glibc.read(0, buffer, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw QDFError("read error: \(String(cString: strerror(errno)))", file: standardInputName)
        }
    }
    public func close() {}
}

/// The file name without folders and without its molecule-format and compression extensions.
func fileStem(_ path: String) -> String {
    var name = path.split(separator: "/").last.map(String.init) ?? path
    for ext in [".gz", ".bz2"] where name.lowercased().hasSuffix(ext) { name.removeLast(ext.count) }
    for ext in [".xyz", ".extxyz", ".sdf", ".sd", ".mol2", ".mol", ".pdbqt", ".pdb", ".ent", ".txt"] where name.lowercased().hasSuffix(ext) {
        name.removeLast(ext.count); break
    }
    return name
}

/// Reads every molecule of a file.
public func readMolecules(_ path: String, properties: [String] = [], format: MoleculeFileFormat? = nil) throws -> [Molecule] {
    try openMoleculeFile(path, properties: properties, format: format).readAll()
}
