import Foundation

// The names and units of a model's outputs, from the metadata keys a trainer writes
// (Dataset.modelMetadata): `property` (comma-separated names, one per output) and `unit`
// (one unit for all outputs, or comma-separated, one per output). Models without them
// (the reference's, older runs) have no names and at most one unit. The keys are read
// once, into two views: `names`/`units` say only what the metadata states (summaries,
// reports), `columnNames`/`columnUnits` always give one label per output (the prediction
// tables' property and unit columns).

/// Names and units of a model's P outputs, read from its metadata.
public struct OutputLabels: Sendable, Equatable {
    /// One name per output (e.g. ["homo", "lumo"]); empty when the metadata has no usable
    /// `property` key (absent, or not one name per output).
    public var names: [String]
    /// One unit per output (e.g. ["eV", "eV"]); empty when the metadata has no usable `unit`.
    public var units: [String]
    /// One name per output, always: the non-empty `property` entries when there is one per
    /// output; else the first entry suffixed `_0`, `_1`, …; without `property`, the name
    /// in the `dataset` key's folder (`QM9under14atoms_atomizationenergy_eV` →
    /// `atomizationenergy`), else `value`.
    public var columnNames: [String]
    /// One unit per output, always: the non-empty `unit` entries when there is one per
    /// output, else the first for every output ("" when none).
    public var columnUnits: [String]

    /// Labels from explicit lists (`names` one per output; `units` empty, one, or one per output).
    public init(names: [String], units: [String]) {
        self.names = names
        self.units = units
        columnNames = names
        columnUnits = units.count == names.count ? units : Array(repeating: units.first ?? "", count: names.count)
    }

    /// Reads `property` and `unit` from `metadata` for a model with `outputs` outputs. For
    /// `names` and `units`, a `property` list of the wrong length is ignored; a single `unit`
    /// applies to every output, a list of the wrong length is ignored.
    public init(metadata: [String: String], outputs: Int) {
        // The entries of a comma-separated key, trimmed (empty entries kept).
        func entries(_ key: String) -> [String] {
            guard let v = metadata[key], !v.isEmpty else { return [] }
            return v.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let n = entries("property"), u = entries("unit")
        names = n.count == outputs ? n : []
        units = u.count == outputs ? u : (u.count == 1 ? Array(repeating: u[0], count: outputs) : [])
        let givenUnits = u.filter { !$0.isEmpty }
        columnUnits = givenUnits.count == outputs ? givenUnits : Array(repeating: givenUnits.first ?? "", count: outputs)
        var given = n.filter { !$0.isEmpty }
        if given.isEmpty {
            var name = "value"
            if let d = metadata["dataset"] {
                let folder = d.split(separator: "/").last(where: { !$0.isEmpty && !$0.hasSuffix(".txt") }).map(String.init) ?? d
                var parts = folder.split(separator: "_").map(String.init)
                if parts.count >= 2 {
                    parts.removeFirst()
                    if parts.count >= 2, let last = parts.last,
                       givenUnits.contains(last) || ["eV", "hartree", "Ha", "kcalmol", "meV"].contains(last) { parts.removeLast() }
                    name = parts.joined(separator: "_")
                }
            }
            given = [name]
        }
        columnNames = given.count == outputs ? given : (0..<outputs).map { "\(given[0])_\($0)" }
    }

    /// The name of output q, or nil.
    public func name(_ q: Int) -> String? { q < names.count ? names[q] : nil }
    /// The unit of output q, or nil.
    public func unit(_ q: Int) -> String? { q < units.count ? units[q] : nil }
    /// The unit shared by every output, or nil (none known, or they differ).
    public var commonUnit: String? { Set(units).count == 1 ? units[0] : nil }

    /// The MAE of each output as one phrase: "MAE mu 0.12345 D", "MAE homo 0.10000 eV,
    /// lumo 0.20000 eV"; without names "MAE 0.10000 / 0.20000 eV" (the unit when shared).
    public func maePhrase(_ mae: [Double], digits: Int = 5) -> String {
        func number(_ v: Double) -> String { String(format: "%.\(digits)f", v) }
        if names.count == mae.count && !mae.isEmpty {
            return "MAE " + mae.indices.map { q in
                "\(names[q]) \(number(mae[q]))" + (unit(q).map { " \($0)" } ?? "")
            }.joined(separator: ", ")
        }
        var s = "MAE " + mae.map(number).joined(separator: " / ")
        if let u = commonUnit { s += " " + u } else if units.count == mae.count && !mae.isEmpty {
            s += " (" + units.joined(separator: " / ") + ")"
        }
        return s
    }
}
