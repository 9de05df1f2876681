// Building QDF datasets from QM9: property values, size filters, exclusions, splits,
// and the QDF text format written exactly as the published QDF files are.
//
// Atomization energy (eV): E = (U0 − Σ_atoms atomref(U0)) × 27.2114, the sum taken in
// atom order starting from 0.0 (QM9's atomref U0 in Hartree: H −0.500273, C −37.846772,
// N −54.583861, O −75.064579, F −99.718730). HOMO and LUMO (eV): value × 27.2114.
// Numbers are printed as Python's repr of a float (shortest round-trip digits), which is
// what the published files hold, bit for bit.

import Foundation
import QuantumDeepField

public enum QM9Property: String, Sendable, CaseIterable {
    /// One value: the atomization energy in eV.
    case atomization
    /// Two values: HOMO and LUMO in eV.
    case homolumo
}

/// How coordinates are printed.
public enum CoordinateStyle: String, Sendable, CaseIterable {
    /// As written in the source (exponents as "e", "0." as "0.0").
    case source
    /// Shortest round-trip decimal (Python's repr of the float).
    case shortest
    /// As the published QDF QM9under14atoms files: `shortest` in train, `source` in val and test.
    case published
}

public enum QM9Split: Sendable {
    /// Shuffle with this seed and cut 8:1:1 (val and test get ⌊n/10⌋ each, train the rest).
    case seeded(UInt64)
    /// Validation and test ids given (e.g. a published split); train is every other molecule.
    case ids(val: [String], test: [String])
    /// No split: every molecule in one file.
    case none
}

public struct QM9BuildOptions: Sendable {
    public var maxAtoms: Int? = nil
    public var minAtoms: Int? = nil
    public var property: QM9Property = .atomization
    public var split: QM9Split = .seeded(1234)
    /// Ids to drop (e.g. QM9's uncharacterized.txt).
    public var exclude: Set<String> = []
    public var coordinates: CoordinateStyle = .source
    public init() {}
}

public enum QM9Dataset {
    /// 1 Hartree in eV, as in the published QDF preprocessing.
    public static let hartreeInEV = 27.2114
    /// QM9's atomref U0 values (Hartree) by atomic number.
    public static let atomrefU0: [Int: Double] = [1: -0.500273, 6: -37.846772, 7: -54.583861,
                                                  8: -75.064579, 9: -99.718730]

    /// The property values of a record, in eV.
    public static func properties(_ r: QM9Record, _ p: QM9Property) throws -> [Double] {
        switch p {
        case .atomization:
            var sum = 0.0
            for z in r.atomicNumbers {
                guard let ref = atomrefU0[z] else {
                    throw QDFError("molecule \(r.id) has element \(Element.symbol(z)), which has no QM9 atomref value", file: r.origin)
                }
                sum += ref
            }
            return [(r.u0 - sum) * hartreeInEV]
        case .homolumo:
            return [r.homo * hartreeInEV, r.lumo * hartreeInEV]
        }
    }

    public struct Splits: Sendable {
        /// (name, records sorted by QM9 index); names are train, val, test (or all).
        public var parts: [(name: String, records: [QM9Record])]
        /// Molecules dropped by --exclude that were present.
        public var excluded: Int
        /// Molecules dropped by the size filter.
        public var filtered: Int
    }

    /// Filters and splits records. Repeated ids are an error naming both places; ids listed
    /// for val/test must be in the filtered dataset and in only one list.
    public static func split(_ records: [QM9Record], options o: QM9BuildOptions) throws -> Splits {
        var firstOrigin = [Int: String]()
        firstOrigin.reserveCapacity(records.count)
        for r in records {
            if let prev = firstOrigin[r.index] {
                throw QDFError("molecule \(r.id) appears twice: first at \(prev)", file: r.origin)
            }
            firstOrigin[r.index] = r.origin
        }
        var excluded = 0, filtered = 0
        var kept = [QM9Record]()
        kept.reserveCapacity(records.count)
        for r in records {
            if o.exclude.contains(r.id) { excluded += 1; continue }
            if let m = o.maxAtoms, r.atomCount > m { filtered += 1; continue }
            if let m = o.minAtoms, r.atomCount < m { filtered += 1; continue }
            kept.append(r)
        }
        kept.sort { $0.index < $1.index }
        var parts: [(String, [QM9Record])]
        switch o.split {
        case .none:
            parts = [("all", kept)]
        case .seeded(let seed):
            var order = Array(0..<kept.count)
            var rng = SplitMix64(seed: seed)
            if order.count > 1 {
                for i in stride(from: order.count - 1, to: 0, by: -1) {
                    let j = Int(rng.next() % UInt64(i + 1))
                    order.swapAt(i, j)
                }
            }
            let nVal = kept.count / 10, nTest = kept.count / 10
            let val = order[0..<nVal].sorted(), test = order[nVal..<(nVal + nTest)].sorted()
            let train = order[(nVal + nTest)...].sorted()
            parts = [("train", train.map { kept[$0] }), ("val", val.map { kept[$0] }), ("test", test.map { kept[$0] })]
        case .ids(let valIDs, let testIDs):
            var position = [String: Int]()
            for (k, r) in kept.enumerated() { position[r.id] = k }
            let all = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var assigned = [Int: String]()
            func take(_ ids: [String], _ name: String) throws -> [QM9Record] {
                var out = [QM9Record]()
                for id in ids {
                    guard let k = position[id] else {
                        if let r = all[id] {
                            let why = o.exclude.contains(id) ? "it is excluded" : "it has \(r.atomCount) atoms, outside the size filter"
                            throw QDFError("\(name) id \(id) is not in the dataset: \(why)")
                        }
                        throw QDFError("\(name) id \(id) is not in the source")
                    }
                    if let other = assigned[k] {
                        throw QDFError("id \(id) is listed \(other == name ? "twice for \(name)" : "for both \(other) and \(name)")")
                    }
                    assigned[k] = name
                    out.append(kept[k])
                }
                return out.sorted { $0.index < $1.index }
            }
            let val = try take(valIDs, "val"), test = try take(testIDs, "test")
            let train = kept.enumerated().filter { assigned[$0.offset] == nil }.map(\.element)
            parts = [("train", train), ("val", val), ("test", test)]
        }
        return Splits(parts: parts, excluded: excluded, filtered: filtered)
    }

    /// The QDF text of molecules: id line, "El x y z" lines, property line; a blank line
    /// between molecules and a newline at the end (as the published files).
    /// - Parameter blankLineAfterLast: end with a blank line too (as the published train.txt).
    public static func qdfText(_ records: [QM9Record], property: QM9Property,
                               coordinates: CoordinateStyle, blankLineAfterLast: Bool = false) throws -> String {
        var s = ""
        s.reserveCapacity(records.count * 700)
        for (k, r) in records.enumerated() {
            if k > 0 { s += "\n" }
            s += r.id; s += "\n"
            for a in 0..<r.atomCount {
                s += Element.symbol(r.atomicNumbers[a])
                for c in 0..<3 {
                    s += " "
                    s += coordinates == .shortest ? pythonRepr(r.positions[a][c]) : r.coordinateText[3 * a + c]
                }
                s += "\n"
            }
            s += try properties(r, property).map(pythonRepr).joined(separator: " ")
            s += "\n"
        }
        if blankLineAfterLast && !records.isEmpty { s += "\n" }
        return s
    }

    /// Writes the splits to `folder` (created if needed) as <name>.txt, each file atomically,
    /// after every file's text is ready (so an error leaves no partial output).
    public static func write(_ splits: Splits, to folder: String, options o: QM9BuildOptions) throws -> [String] {
        var texts = [(String, String)]()
        for (name, records) in splits.parts {
            // The published train.txt has shortest-repr coordinates and a blank line after every
            // molecule; its val.txt and test.txt keep the source's text and end with one newline.
            let publishedTrain = o.coordinates == .published && (name == "train" || name == "all")
            let style: CoordinateStyle = o.coordinates == .published ? (publishedTrain ? .shortest : .source) : o.coordinates
            texts.append((folder + "/" + name + ".txt", try qdfText(records, property: o.property, coordinates: style,
                                                                   blankLineAfterLast: publishedTrain)))
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw QDFError("cannot create the output folder: \(error.localizedDescription)", file: folder)
        }
        for (path, text) in texts { try writeAtomically(text, to: path) }
        return texts.map(\.0)
    }
}

/// Python's repr of a float: the shortest digits that round-trip (as Swift's description),
/// in positional notation for 1e-4 ≤ |x| < 1e16 and "d.ddde-XX" otherwise.
public func pythonRepr(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
    // Digits and decimal exponent from Swift's shortest representation ("123.45", "1.5e-05").
    let d = abs(x).description.utf8
    var digits = [UInt8]()
    digits.reserveCapacity(20)
    var pointAt = -1, expPart = 0, expSign = 1, inExp = false
    for c in d {
        if inExp {
            if c == UInt8(ascii: "-") { expSign = -1 } else if c != UInt8(ascii: "+") { expPart = expPart * 10 + Int(c - 48) }
        } else if c == UInt8(ascii: ".") { pointAt = digits.count }
        else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { inExp = true }
        else { digits.append(c) }
    }
    let intDigits = pointAt >= 0 ? pointAt : digits.count
    var lead = 0
    while lead < digits.count - 1 && digits[lead] == UInt8(ascii: "0") { lead += 1 }
    var end = digits.count
    while end - lead > 1 && digits[end - 1] == UInt8(ascii: "0") { end -= 1 }
    let ds = digits[lead..<end]
    // The value is 0.ds × 10^point: `point` digits stand before the decimal point.
    let point = intDigits - lead + expSign * expPart
    let sci = point - 1
    var out = [UInt8]()
    out.reserveCapacity(26)
    if x < 0 { out.append(UInt8(ascii: "-")) }
    if sci < -4 || sci >= 16 {
        out.append(ds.first!)
        if ds.count > 1 { out.append(UInt8(ascii: ".")); out.append(contentsOf: ds.dropFirst()) }
        out.append(UInt8(ascii: "e")); out.append(sci < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        let a = abs(sci)
        if a < 10 { out.append(UInt8(ascii: "0")) }
        out.append(contentsOf: String(a).utf8)
    } else if point <= 0 {
        out.append(UInt8(ascii: "0")); out.append(UInt8(ascii: "."))
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -point))
        out.append(contentsOf: ds)
    } else if point >= ds.count {
        out.append(contentsOf: ds)
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: point - ds.count))
        out.append(UInt8(ascii: ".")); out.append(UInt8(ascii: "0"))
    } else {
        out.append(contentsOf: ds.prefix(point)); out.append(UInt8(ascii: "."))
        out.append(contentsOf: ds.dropFirst(point))
    }
    return String(decoding: out, as: UTF8.self)
}

/// SplitMix64: a small, fast, seedable generator (the split must not depend on the platform).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Reads a list of molecule ids: one per line (the first field; QM9 indices such as "21725"
/// or ids such as "dsgdb9nsd_021725"), with "#" comments; lines whose first field is neither
/// (headers of QM9's uncharacterized.txt) are skipped and counted. A molecule file (QDF
/// text, XYZ or SDF) is read for its ids instead.
public func readIDList(_ path: String) throws -> (ids: [String], skippedLines: Int) {
    // A QDF text file: its second non-blank line is an atom line.
    let probe = try openLines(path)
    var firstLines = [String]()
    while firstLines.count < 2, let l = try probe.nextLine() {
        if !l.trimmingCharacters(in: .whitespaces).isEmpty { firstLines.append(l) }
    }
    let isMoleculeFile: Bool = {
        if moleculeFormat(path) != .qdf { return true }
        guard firstLines.count == 2 else { return false }
        let t = tokens(firstLines[1])
        return t.count == 4 && Element.atomicNumber(t[0]) != nil && t[1...].allSatisfy { parseNumber($0) != nil }
    }()
    if isMoleculeFile {
        return (try readMolecules(path).map(\.id), 0)
    }
    let lines = try openLines(path)
    var ids = [String](), skipped = 0
    var seen = [String: Int]()
    while let l = try lines.nextLine() {
        let t = tokens(l)
        guard let first = t.first, !first.hasPrefix("#") else { continue }
        let id: String
        if let idx = qm9Index(first) { id = qm9ID(idx) }
        else if first.contains("_") && first.last?.isNumber == true { id = String(first) }
        else { skipped += 1; continue }
        if let prev = seen[id] { throw lines.error("id \(id) repeats (first at line \(prev))") }
        seen[id] = lines.lineNumber
        ids.append(id)
    }
    return (ids, skipped)
}
