import Foundation

// What a data set's values are: `dataset.json` beside train.txt, val.txt and test.txt,
// written by `qdf dataset qm9`. One entry per value of a molecule's property line:
//
//   {
//     "format": "qdf-dataset 1",
//     "source": "QM9 (Ramakrishnan et al. 2014), qm9pack-1.0.3-py3-none-any.whl",
//     "properties": [
//       {"name": "mu", "meaning": "dipole moment", "unit": "D", "kind": "intensive"}
//     ]
//   }
//
// `kind` decides the readout (docs/model.md §6): an extensive property (it grows with the
// molecule: energies, ZPVE, heat capacity, polarizability, ⟨R²⟩) takes the sum over grid
// points, an intensive one (dipole moment, orbital energies, rotational constants) the mean.
// A folder without the file works as before: the unit comes from the folder's name.

/// Whether a property grows with the size of the molecule.
public enum PropertyKind: String, Sendable, CaseIterable, Equatable {
    /// Grows with the molecule (energies, ZPVE, Cv, α, ⟨R²⟩): the sum readout.
    case extensive
    /// Independent of the molecule's size (μ, HOMO, LUMO, gap, rotational constants): the mean readout.
    case intensive

    /// The readout suited to this kind: sum for extensive, mean for intensive.
    public var readout: Readout { self == .extensive ? .sum : .mean }

    /// The readout for properties trained together. Throws `QDFError` naming them when the
    /// kinds are mixed (one readout cannot suit both) or the list is empty.
    public static func readout(for properties: [PropertyInfo]) throws -> Readout {
        guard let first = properties.first else { throw QDFError("no properties to choose a readout for") }
        let ext = properties.filter { $0.kind == .extensive }.map(\.name)
        let int = properties.filter { $0.kind == .intensive }.map(\.name)
        if !ext.isEmpty && !int.isEmpty {
            throw QDFError("the properties mix extensive (\(ext.joined(separator: ", ")): sum readout) and intensive "
                           + "(\(int.joined(separator: ", ")): mean readout) ones; one model has one readout, so train "
                           + "them as separate data sets")
        }
        return first.kind.readout
    }
}

/// One value of a data set's property line: its name, unit and kind.
public struct PropertyInfo: Sendable, Equatable {
    /// A short name, e.g. "mu", "gap", "U0_atom".
    public var name: String
    /// The unit of the values, e.g. "D", "eV", "bohr^3".
    public var unit: String
    /// Extensive (sum readout) or intensive (mean readout).
    public var kind: PropertyKind
    /// A phrase saying what it is, e.g. "dipole moment" (may be empty).
    public var meaning: String

    /// A property description.
    public init(name: String, unit: String, kind: PropertyKind, meaning: String = "") {
        self.name = name; self.unit = unit; self.kind = kind; self.meaning = meaning
    }
}

/// The contents of a data set's `dataset.json`: what each value of the property line is.
public struct DatasetMetadata: Sendable, Equatable {
    /// The file name inside a data-set folder.
    public static let fileName = "dataset.json"
    /// The format tag written and accepted.
    public static let format = "qdf-dataset 1"

    /// One entry per value of a molecule's property line, in order.
    public var properties: [PropertyInfo]
    /// Where the values come from (free text, may be empty).
    public var source: String

    /// Metadata for these properties.
    public init(properties: [PropertyInfo], source: String = "") {
        self.properties = properties
        self.source = source
    }

    /// The JSON text (keys in a fixed order, one property per line), newline-terminated.
    public func jsonText() -> String {
        func q(_ s: String) -> String {
            let d = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
            return String(decoding: d, as: UTF8.self).dropFirst().dropLast().description
        }
        var s = "{\n  \"format\": \(q(DatasetMetadata.format)),\n  \"source\": \(q(source)),\n  \"properties\": [\n"
        s += properties.map { p in
            "    {\"name\": \(q(p.name)), \"meaning\": \(q(p.meaning)), \"unit\": \(q(p.unit)), \"kind\": \(q(p.kind.rawValue))}"
        }.joined(separator: ",\n")
        s += "\n  ]\n}\n"
        return s
    }

    /// Writes `dataset.json` into `folder`, atomically.
    public func write(folder: String) throws {
        try writeAtomically(jsonText(), to: (folder as NSString).appendingPathComponent(DatasetMetadata.fileName))
    }

    /// Reads `dataset.json` from `folder`; nil when the folder has none. Throws `QDFError`
    /// (file, and the line of the offending value where it can be found) for text that is
    /// not JSON, a missing or empty property list, a property without a name or unit, an
    /// unknown kind, or a name listed twice.
    public static func read(folder: String) throws -> DatasetMetadata? {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw QDFError("cannot read: \(error.localizedDescription)", file: path)
        }
        return try parse(data, path: path)
    }

    /// Parses the JSON text of a `dataset.json`; `path` names it in errors.
    public static func parse(_ data: Data, path: String) throws -> DatasetMetadata {
        let text = String(decoding: data, as: UTF8.self)
        /// The 1-based line of the first occurrence of `needle`, if any.
        func line(of needle: String) -> Int? {
            guard let r = text.range(of: needle) else { return nil }
            return text[..<r.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw QDFError("not valid JSON: \(detail)", file: path)
        }
        guard let top = object as? [String: Any] else { throw QDFError("expected a JSON object at the top", file: path, line: 1) }
        if let f = top["format"] {
            guard let fs = f as? String, fs == format else {
                throw QDFError("unknown format \(f) (this qdf reads \"\(format)\")", file: path, line: line(of: "\"format\""))
            }
        }
        guard let list = top["properties"] as? [Any] else {
            throw QDFError("no \"properties\" list (one entry per value of the property line)", file: path)
        }
        guard !list.isEmpty else { throw QDFError("the \"properties\" list is empty", file: path, line: line(of: "\"properties\"")) }
        var props = [PropertyInfo]()
        var seen = Set<String>()
        for (k, item) in list.enumerated() {
            guard let o = item as? [String: Any] else {
                throw QDFError("properties[\(k)] is not an object", file: path, line: line(of: "\"properties\""))
            }
            func string(_ key: String, required: Bool) throws -> String {
                guard let v = o[key] else {
                    if required { throw QDFError("properties[\(k)] has no \"\(key)\"", file: path, line: line(of: "\"properties\"")) }
                    return ""
                }
                guard let s = v as? String, !(required && s.trimmingCharacters(in: .whitespaces).isEmpty) else {
                    throw QDFError("properties[\(k)].\(key) must be a non-empty string, found \(v)", file: path,
                                   line: line(of: "\"\(key)\""))
                }
                return s
            }
            let name = try string("name", required: true)
            let unit = try string("unit", required: true)
            let kindText = try string("kind", required: true)
            guard let kind = PropertyKind(rawValue: kindText) else {
                throw QDFError("properties[\(k)] (\(name)): kind must be extensive or intensive, not '\(kindText)'",
                               file: path, line: line(of: "\"\(kindText)\""))
            }
            guard !name.contains(","), !unit.contains(",") else {
                throw QDFError("properties[\(k)]: a name or unit may not contain a comma ('\(name)', '\(unit)')",
                               file: path, line: line(of: "\"\(name)\""))
            }
            guard seen.insert(name).inserted else {
                throw QDFError("property '\(name)' is listed twice", file: path, line: line(of: "\"\(name)\""))
            }
            props.append(PropertyInfo(name: name, unit: unit, kind: kind, meaning: try string("meaning", required: false)))
        }
        return DatasetMetadata(properties: props, source: (top["source"] as? String) ?? "")
    }
}
