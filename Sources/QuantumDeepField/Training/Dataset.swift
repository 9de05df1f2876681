import Foundation

// A training dataset: a folder with train.txt, val.txt and test.txt in the QDF text
// format, and optionally dataset.json naming each value's property, unit and kind
// (DatasetMetadata.swift). Without dataset.json the folder's name carries the property
// and unit, e.g. "QM9under14atoms_atomizationenergy_eV".

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
    /// The contents of the folder's dataset.json (one entry per output), nil without one.
    public var metadata: DatasetMetadata? = nil

    /// A data set in memory (for a `Trainer` without files): `directory` is empty. The
    /// splits must be non-empty and agree in P, the number of property values per molecule.
    public init(name: String, train: [Molecule], val: [Molecule], test: [Molecule], metadata: DatasetMetadata? = nil) {
        self.init(name: name, directory: "", train: train, val: val, test: test, metadata: metadata)
    }

    init(name: String, directory: String, train: [Molecule], val: [Molecule], test: [Molecule], metadata: DatasetMetadata?) {
        self.name = name
        self.directory = directory
        self.train = train
        self.val = val
        self.test = test
        self.metadata = metadata
    }

    /// Reads train.txt, val.txt and test.txt from `directory`. Throws `QDFError` (with file,
    /// and line for parse errors) if the folder or a file is missing, a split is empty, a
    /// molecule lacks property values or repeats an id, or the splits differ in P; and if
    /// dataset.json is malformed or lists a number of properties other than P.
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
        let metadata = try DatasetMetadata.read(folder: directory)
        if let md = metadata, md.properties.count != p {
            throw QDFError("lists \(md.properties.count) propert\(md.properties.count == 1 ? "y" : "ies") "
                           + "(\(md.properties.map(\.name).joined(separator: ", "))) but the molecules of train.txt have \(p) value\(p == 1 ? "" : "s") each",
                           file: (directory as NSString).appendingPathComponent(DatasetMetadata.fileName))
        }
        let name = (directory as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? directory
        return Dataset(name: name, directory: (directory as NSString).standardizingPath, train: train, val: val, test: test,
                       metadata: metadata)
    }

    /// P, the number of property values per molecule.
    public var outputs: Int { train[0].properties.count }

    /// The folder-name words recognized as units ("..._eV"), and the unit each stands for.
    public static let folderUnits: [String: String] = [
        "eV": "eV", "meV": "meV", "kcalmol": "kcalmol", "Hartree": "Hartree", "Ha": "Ha", "kJmol": "kJmol",
        "D": "D", "GHz": "GHz", "bohr3": "bohr^3", "bohr2": "bohr^2", "calmolK": "cal/(mol K)"]

    /// The unit: from dataset.json (one unit, or comma-separated, one per output, when they
    /// differ); without it, from the name's last underscore-separated word ("..._eV" → "eV",
    /// "..._D" → "D", "..._bohr3" → "bohr^3"; see `folderUnits`), else "units".
    public var unit: String {
        if let md = metadata {
            let units = md.properties.map(\.unit)
            return Set(units).count == 1 ? units[0] : units.joined(separator: ",")
        }
        let last = name.split(separator: "_").last.map(String.init) ?? ""
        return Dataset.folderUnits[last] ?? "units"
    }

    /// One name per output: from dataset.json; without it, the folder name's word before the
    /// unit ("QM9under14atoms_atomizationenergy_eV" → "atomizationenergy"; with P > 1 outputs,
    /// suffixed "_0", "_1", ...), or "property" when the name has no such word.
    public var propertyNames: [String] {
        if let md = metadata { return md.properties.map(\.name) }
        let words = name.split(separator: "_").map(String.init)
        let base = words.count >= 3 ? words[words.count - 2] : "property"
        return outputs == 1 ? [base] : (0..<outputs).map { "\(base)_\($0)" }
    }

    /// The keys a model trained on this data set records: `property` (comma-separated names,
    /// one per output), `unit` (one unit, or comma-separated, one per output) and, with
    /// dataset.json, `property_kind` (comma-separated, one per output).
    public var modelMetadata: [String: String] {
        var md = ["property": propertyNames.joined(separator: ","), "unit": unit]
        if let m = metadata { md["property_kind"] = m.properties.map(\.kind.rawValue).joined(separator: ",") }
        return md
    }

    /// The readout to train with. `requested` (an explicit `--operation`) wins, with a
    /// `warning` when dataset.json says the properties are of the other kind; otherwise the
    /// kind of the properties decides (extensive → sum, intensive → mean) and a mix throws
    /// `QDFError`; without dataset.json, sum (the reference's default). `reason` says which.
    public func chooseReadout(requested: Readout?) throws -> (readout: Readout, reason: String, warning: String?) {
        let props = metadata?.properties ?? []
        if requested == .dipole {
            // |μ| from the density, in debye: one output, and a dipole moment in debye.
            guard outputs == 1 else {
                throw QDFError("the dipole readout predicts one value, |μ|; the data set has \(outputs) per molecule", file: directory)
            }
            let warning = unit == "D" ? nil : "the dipole readout predicts |μ| in debye (D); the data set's unit is '\(unit)'"
            return (.dipole, "readout dipole: |μ| in debye from the model's density, nuclei and frozen cores (--operation dipole; docs/model.md §20)", warning)
        }
        if let r = requested {
            let other = props.filter { $0.kind.readout != r }
            let warning = other.isEmpty ? nil :
                "\(other.map(\.name).joined(separator: ", ")) \(other.count == 1 ? "is" : "are") \(other[0].kind.rawValue), "
                + "whose readout is \(other[0].kind.readout.rawValue), but --operation \(r.rawValue) was given"
            return (r, "readout \(r.rawValue) (--operation)", warning)
        }
        guard !props.isEmpty else {
            return (.sum, "readout sum (the default; \(name) has no \(DatasetMetadata.fileName) saying whether its property is extensive or intensive)", nil)
        }
        let r: Readout
        do { r = try PropertyKind.readout(for: props) } catch let e as QDFError {
            throw QDFError(e.message + " (or give --operation)", file: (directory as NSString).appendingPathComponent(DatasetMetadata.fileName))
        }
        let names = props.map(\.name).joined(separator: ", ")
        return (r, "readout \(r.rawValue): \(names) \(props.count == 1 ? "is" : "are") \(props[0].kind.rawValue) (\(DatasetMetadata.fileName))", nil)
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
