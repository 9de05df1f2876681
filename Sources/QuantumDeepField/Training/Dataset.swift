import Foundation

// A training dataset: a folder with train.txt, val.txt and test.txt in the QDF text
// format. Its name (the folder's) carries the property and unit, e.g.
// "QM9under14atoms_atomizationenergy_eV".

/// A training data set loaded into memory: its three splits and its name.
public struct Dataset: Sendable {
    /// The folder's name, e.g. "QM9under14atoms_atomizationenergy_eV".
    public var name: String
    /// The folder, path standardized.
    public var directory: String
    /// Training molecules, in file order.
    public var train: [Molecule]
    /// Validation molecules, in file order.
    public var val: [Molecule]
    /// Test molecules, in file order.
    public var test: [Molecule]

    /// Reads train.txt, val.txt and test.txt from `directory`. Throws `QDFError` (with file,
    /// and line for parse errors) if the folder or a file is missing, a split is empty, a
    /// molecule lacks property values or repeats an id, or the splits differ in P.
    public static func load(directory: String) throws -> Dataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw QDFError("dataset folder not found (it must hold train.txt, val.txt and test.txt)", file: directory)
        }
        func read(_ split: String) throws -> [Molecule] {
            let path = (directory as NSString).appendingPathComponent("\(split).txt")
            guard FileManager.default.fileExists(atPath: path) else {
                throw QDFError("missing \(split).txt (a dataset folder holds train.txt, val.txt and test.txt)", file: directory)
            }
            let ms = try QDFTextReader(path: path).readAll()
            guard !ms.isEmpty else { throw QDFError("no molecules", file: path) }
            var seen = Set<String>()
            for m in ms {
                if m.properties.isEmpty { throw QDFError("molecule '\(m.id)' has no property values to train on", file: path) }
                if !seen.insert(m.id).inserted { throw QDFError("molecule id '\(m.id)' appears twice", file: path) }
            }
            return ms
        }
        let train = try read("train"), val = try read("val"), test = try read("test")
        let p = train[0].properties.count
        for (split, ms) in [("val", val), ("test", test)] where ms[0].properties.count != p {
            throw QDFError("\(split).txt has \(ms[0].properties.count) properties per molecule, train.txt has \(p)", file: directory)
        }
        let name = (directory as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? directory
        return Dataset(name: name, directory: (directory as NSString).standardizingPath, train: train, val: val, test: test)
    }

    /// P, the number of property values per molecule.
    public var outputs: Int { train[0].properties.count }

    /// The unit, from the name's last underscore-separated word ("..._eV" → "eV"); only
    /// eV, meV, kcalmol, Hartree, Ha and kJmol are recognized, anything else gives "units".
    public var unit: String {
        let last = name.split(separator: "_").last.map(String.init) ?? ""
        return ["eV", "meV", "kcalmol", "Hartree", "Ha", "kJmol"].contains(last) ? last : "units"
    }

    /// The orbital dictionary in order of first appearance: train, then val, then test.
    public func orbitalDictionary(basis: BasisSet) -> OrbitalDictionary {
        var d = OrbitalDictionary()
        for ms in [train, val, test] { for m in ms { d.add(m, basis: basis) } }
        return d
    }

    /// "3-14": the smallest and largest training molecule.
    public var trainAtomRange: String {
        let counts = train.map(\.atomCount)
        return "\(counts.min() ?? 0)-\(counts.max() ?? 0)"
    }
}
