import Foundation

// The names and units of a model's outputs, from the metadata keys a trainer writes
// (Dataset.modelMetadata): `property` (comma-separated names, one per output) and `unit`
// (one unit for all outputs, or comma-separated, one per output). Models without them
// (the reference's, older runs) have no names and at most one unit.

/// Names and units of a model's P outputs, read from its metadata.
public struct OutputLabels: Sendable, Equatable {
    /// One name per output (e.g. ["homo", "lumo"]); empty when the metadata has no usable
    /// `property` key (absent, or not one name per output).
    public var names: [String]
    /// One unit per output (e.g. ["eV", "eV"]); empty when the metadata has no usable `unit`.
    public var units: [String]

    /// Labels from explicit lists (each empty, or one entry per output).
    public init(names: [String], units: [String]) {
        self.names = names
        self.units = units
    }

    /// Reads `property` and `unit` from `metadata` for a model with `outputs` outputs. A
    /// `property` list of the wrong length is ignored; a single `unit` applies to every output,
    /// a list of the wrong length is ignored.
    public init(metadata: [String: String], outputs: Int) {
        func list(_ key: String) -> [String] {
            guard let v = metadata[key], !v.isEmpty else { return [] }
            return v.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let n = list("property"), u = list("unit")
        names = n.count == outputs ? n : []
        units = u.count == outputs ? u : (u.count == 1 ? Array(repeating: u[0], count: outputs) : [])
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
