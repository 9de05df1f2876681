// Building QDF datasets from QM9: property values, size filters, exclusions, splits,
// and the QDF text format written exactly as the published QDF files are.
//
// Every quantity QM9 ships is a property (QM9Property): in its QM9 unit, except that
// Hartree values (HOMO, LUMO, gap, ZPVE, U0, U, H, G) are converted to eV with ×27.2114,
// the constant of the published QDF files. The atomization forms subtract QM9's atomic
// reference energies first: E = (X − Σ_atoms atomref_X) × 27.2114, the sum taken in atom
// order starting from 0.0 (atomref U0 in Hartree: H −0.500273, C −37.846772, N −54.583861,
// O −75.064579, F −99.718730; U, H and G in `atomref`). Numbers are printed as Python's
// repr of a float (shortest round-trip digits), which is what the published files hold,
// bit for bit.

import Foundation
import QuantumDeepField

/// A property a QM9 data set can be built for (`qdf dataset qm9 --property NAME[,NAME...]`;
/// the raw value is the command-line name).
public enum QM9Property: String, Sendable, CaseIterable {
    case mu, alpha, homo, lumo, gap, r2, zpve
    case U0, U, H, G, Cv
    case A, B, C
    case U0_atom, U_atom, H_atom, G_atom

    /// The old names: `atomization` is U0_atom, `homolumo` is homo and lumo.
    public static let aliases: [String: [QM9Property]] = ["atomization": [.U0_atom], "homolumo": [.homo, .lumo]]
    /// The atomization energy (U0_atom), under its older name.
    public static var atomization: QM9Property { .U0_atom }

    /// Parses "mu", "homo,lumo", "atomization", "homolumo,gap": names or aliases separated by
    /// commas. Throws `QDFError` naming an unknown or repeated name (and listing the names).
    public static func parseList(_ text: String) throws -> [QM9Property] {
        var out = [QM9Property]()
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let n = raw.trimmingCharacters(in: .whitespaces)
            let ps: [QM9Property]
            if let p = QM9Property(rawValue: n) { ps = [p] }
            else if let a = aliases[n] { ps = a }
            else {
                throw QDFError("unknown QM9 property '\(n)'; the names are \(allCases.map(\.rawValue).joined(separator: " ")) "
                               + "(and atomization = U0_atom, homolumo = homo,lumo; `qdf dataset qm9 --list-properties`)")
            }
            for p in ps {
                if out.contains(p) { throw QDFError("QM9 property '\(p.rawValue)' is listed twice in '\(text)'") }
                out.append(p)
            }
        }
        return out
    }

    /// The QM9 quantity it is computed from: the quantity of its name (without `_atom`).
    public var quantity: QM9Quantity {
        QM9Quantity(name: atomref == nil ? rawValue : String(rawValue.dropLast("_atom".count)))!
    }

    /// What it is, in words.
    public var meaning: String {
        switch self {
        case .mu: return "dipole moment"
        case .alpha: return "isotropic polarizability"
        case .homo: return "HOMO energy"
        case .lumo: return "LUMO energy"
        case .gap: return "HOMO-LUMO gap"
        case .r2: return "electronic spatial extent <R^2>"
        case .zpve: return "zero-point vibrational energy"
        case .U0: return "internal energy at 0 K"
        case .U: return "internal energy at 298.15 K"
        case .H: return "enthalpy at 298.15 K"
        case .G: return "free energy at 298.15 K"
        case .Cv: return "heat capacity at 298.15 K"
        case .A: return "rotational constant A"
        case .B: return "rotational constant B"
        case .C: return "rotational constant C"
        case .U0_atom: return "atomization energy at 0 K (U0 minus atomic references)"
        case .U_atom: return "atomization energy at 298.15 K (U minus atomic references)"
        case .H_atom: return "atomization enthalpy at 298.15 K (H minus atomic references)"
        case .G_atom: return "atomization free energy at 298.15 K (G minus atomic references)"
        }
    }

    /// The unit of the values written: "D", "bohr^3", "eV", "bohr^2", "cal/(mol K)", "GHz".
    public var unit: String {
        switch self {
        case .mu: return "D"
        case .alpha: return "bohr^3"
        case .r2: return "bohr^2"
        case .Cv: return "cal/(mol K)"
        case .A, .B, .C: return "GHz"
        case .homo, .lumo, .gap, .zpve, .U0, .U, .H, .G, .U0_atom, .U_atom, .H_atom, .G_atom: return "eV"
        }
    }

    /// The unit as the last word of a data-set folder's name ("..._eV", "..._D", "..._bohr3").
    public var folderUnit: String {
        switch self {
        case .alpha: return "bohr3"
        case .r2: return "bohr2"
        case .Cv: return "calmolK"
        default: return unit
        }
    }

    /// Extensive (energies, ZPVE, Cv, α, ⟨R²⟩: sum readout) or intensive (μ, HOMO, LUMO,
    /// gap, A, B, C: mean readout).
    public var kind: PropertyKind {
        switch self {
        case .mu, .homo, .lumo, .gap, .A, .B, .C: return .intensive
        case .alpha, .r2, .zpve, .U0, .U, .H, .G, .Cv, .U0_atom, .U_atom, .H_atom, .G_atom: return .extensive
        }
    }

    /// true for the quantities QM9 gives in Hartree (converted to eV).
    public var isHartree: Bool { unit == "eV" }

    /// QM9's atomic reference values (Hartree, by atomic number) the atomization forms
    /// subtract; nil for the other properties.
    public var atomref: [Int: Double]? {
        switch self {
        case .U0_atom: return QM9Dataset.atomrefU0
        case .U_atom: return QM9Dataset.atomrefU
        case .H_atom: return QM9Dataset.atomrefH
        case .G_atom: return QM9Dataset.atomrefG
        default: return nil
        }
    }

    /// Name, unit and kind for a data set's dataset.json.
    public var info: PropertyInfo { PropertyInfo(name: rawValue, unit: unit, kind: kind, meaning: meaning) }

    /// The table `qdf dataset qm9 --list-properties` prints: name, meaning, unit, kind.
    public static var table: String {
        var rows = [["name", "meaning", "unit", "kind"]]
        for p in allCases { rows.append([p.rawValue, p.meaning, p.unit, p.kind.rawValue]) }
        let widths = (0..<4).map { c in rows.map { $0[c].count }.max()! }
        var s = rows.map { r in
            (0..<4).map { c in c == 3 ? r[c] : r[c].padding(toLength: widths[c], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
        s += "\naliases: atomization = U0_atom, homolumo = homo,lumo. "
        s += "Hartree values are converted with 1 Hartree = 27.2114 eV; the _atom forms subtract QM9's atomic reference energies (H, C, N, O, F).\n"
        return s
    }
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
    /// The properties written on each molecule's property line, in order (default: U0_atom).
    public var properties: [QM9Property] = [.U0_atom]
    /// Keep only these ids (e.g. a sample given by a molecule file); nil keeps all.
    public var only: Set<String>? = nil
    public var split: QM9Split = .seeded(1234)
    /// Ids to drop (e.g. QM9's uncharacterized.txt).
    public var exclude: Set<String> = []
    public var coordinates: CoordinateStyle = .source
    public init() {}
}

public enum QM9Dataset {
    /// 1 Hartree in eV, as in the published QDF preprocessing.
    public static let hartreeInEV = 27.2114
    /// QM9's atomic reference energies (Hartree) by atomic number (QM9's atomref table):
    /// U at 0 K.
    public static let atomrefU0: [Int: Double] = [1: -0.500273, 6: -37.846772, 7: -54.583861,
                                                  8: -75.064579, 9: -99.718730]
    /// U at 298.15 K.
    public static let atomrefU: [Int: Double] = [1: -0.498857, 6: -37.845355, 7: -54.582445,
                                                 8: -75.063163, 9: -99.717314]
    /// H at 298.15 K.
    public static let atomrefH: [Int: Double] = [1: -0.497912, 6: -37.844411, 7: -54.581501,
                                                 8: -75.062219, 9: -99.716370]
    /// G at 298.15 K.
    public static let atomrefG: [Int: Double] = [1: -0.510927, 6: -37.861317, 7: -54.598897,
                                                 8: -75.079532, 9: -99.733544]

    /// One property's value for a record, in the property's unit (`QM9Property.unit`).
    /// Throws `QDFError` (at the record's origin) when the source lacked the quantity or an
    /// atom has no reference energy.
    public static func value(_ r: QM9Record, _ p: QM9Property) throws -> Double {
        guard let x = r[p.quantity] else {
            throw QDFError("molecule \(r.id): the source has no \(p.quantity.name) values (qm9pack column \(p.quantity.csvColumns[0])), needed for '\(p.rawValue)'",
                           file: r.origin)
        }
        guard let ref = p.atomref else { return p.isHartree ? x * hartreeInEV : x }
        var sum = 0.0
        for z in r.atomicNumbers {
            guard let a = ref[z] else {
                throw QDFError("molecule \(r.id) has element \(Element.symbol(z)), which has no QM9 atomref value", file: r.origin)
            }
            sum += a
        }
        return (x - sum) * hartreeInEV
    }

    /// The property values of a record, in order, each in its unit.
    public static func properties(_ r: QM9Record, _ ps: [QM9Property]) throws -> [Double] {
        try ps.map { try value(r, $0) }
    }

    /// The dataset.json of a data set of these properties. Throws `QDFError` when they mix
    /// extensive and intensive properties (one model has one readout).
    public static func metadata(_ ps: [QM9Property], source: String) throws -> DatasetMetadata {
        let infos = ps.map(\.info)
        _ = try PropertyKind.readout(for: infos)
        return DatasetMetadata(properties: infos, source: source)
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
            if let only = o.only, !only.contains(r.id) { filtered += 1; continue }
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
                            let why = o.exclude.contains(id) ? "it is excluded"
                                : o.only.map({ !$0.contains(id) }) == true ? "it is not in the --only list"
                                : "it has \(r.atomCount) atoms, outside the size filter"
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
    public static func qdfText(_ records: [QM9Record], properties: [QM9Property],
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
            s += try self.properties(r, properties).map(pythonRepr).joined(separator: " ")
            s += "\n"
        }
        if blankLineAfterLast && !records.isEmpty { s += "\n" }
        return s
    }

    /// Writes the splits to `folder` (created if needed) as <name>.txt, and dataset.json
    /// (`metadata`: the properties, units and kinds; `source` names where the values come
    /// from), each file atomically, after every file's text is ready (so an error leaves no
    /// partial output). Returns the paths of the .txt files.
    public static func write(_ splits: Splits, to folder: String, options o: QM9BuildOptions,
                             source: String = "QM9 (Ramakrishnan et al., Sci. Data 1, 140022 (2014))") throws -> [String] {
        let md = try metadata(o.properties, source: source)
        var texts = [(String, String)]()
        for (name, records) in splits.parts {
            // The published train.txt has shortest-repr coordinates and a blank line after every
            // molecule; its val.txt and test.txt keep the source's text and end with one newline.
            let publishedTrain = o.coordinates == .published && (name == "train" || name == "all")
            let style: CoordinateStyle = o.coordinates == .published ? (publishedTrain ? .shortest : .source) : o.coordinates
            texts.append((folder + "/" + name + ".txt", try qdfText(records, properties: o.properties, coordinates: style,
                                                                   blankLineAfterLast: publishedTrain)))
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw QDFError("cannot create the output folder: \(error.localizedDescription)", file: folder)
        }
        for (path, text) in texts { try writeAtomically(text, to: path) }
        try md.write(folder: folder)
        return texts.map(\.0)
    }
}
