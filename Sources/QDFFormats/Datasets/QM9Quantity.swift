import QuantumDeepField

// QM9's quantities: the one list of their names (the .xyz files' line 2 order), the
// qm9pack CSV columns that hold them, and the parsing of an .xyz file's "gdb" line
// (used by XYZReader and by the QM9 data-set builder).

/// QM9's fifteen quantities per molecule, in the order of line 2 of its .xyz files and in
/// QM9's units as distributed: A, B, C (GHz), μ (D), α (bohr³), HOMO, LUMO, gap (Hartree),
/// ⟨R²⟩ (bohr²), ZPVE, U0, U, H, G (Hartree), Cv (cal/(mol K)).
public enum QM9Quantity: Int, Sendable, CaseIterable {
    case A, B, C, mu, alpha, homo, lumo, gap, r2, zpve, U0, U, H, G, Cv

    /// The name used in QM9's .xyz files' documentation and on the command line ("A",
    /// "mu", "U0", ...): the case's name.
    public var name: String { String(describing: self) }

    /// The quantity of a name: exact, else ignoring case ("u0" is U0); nil for another name.
    public init?(name: String) {
        guard let q = Self.allCases.first(where: { $0.name == name })
                ?? Self.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = q
    }

    /// The names of the 15 quantities, in the order of line 2 of QM9's .xyz files.
    public static var names: [String] { allCases.map(\.name) }

    /// Line 2 of a QM9 .xyz file split into fields, "gdb N" then the 15 quantities:
    /// (N, the values in `QM9Quantity` order), or nil when the fields are not a gdb line.
    /// A value that is not a number throws `error(message)`.
    static func gdbLine(_ fields: [Substring], error: (String) -> QDFError) throws -> (index: Int, values: [Double])? {
        guard fields.count == 17, fields[0] == "gdb", let index = Int(fields[1]) else { return nil }
        var values = [Double]()
        values.reserveCapacity(15)
        for (q, t) in zip(allCases, fields[2...]) {
            guard let v = parseNumber(t) else { throw error("QM9 property \(q.name) is not a number: '\(excerpt(t))'") }
            values.append(v)
        }
        return (index, values)
    }

    /// The qm9pack CSV column holding this quantity (the first name is qm9pack's own
    /// spelling, e.g. "Enthalphy_298K_au").
    var csvColumns: [String] {
        switch self {
        case .A: return ["RotA_GHz"]
        case .B: return ["RotB_GHz"]
        case .C: return ["RotC_GHz"]
        case .mu: return ["Dipole_debye"]
        case .alpha: return ["Polarizability_bohr3"]
        case .homo: return ["HOMO_au"]
        case .lumo: return ["LUMO_au"]
        case .gap: return ["HOMO_LUMO_gap_au"]
        case .r2: return ["R2_bohr2"]
        case .zpve: return ["ZPVE_au"]
        case .U0: return ["InternalEnergy_0K_au"]
        case .U: return ["InternalEnergy_298K_au"]
        case .H: return ["Enthalphy_298K_au", "Enthalpy_298K_au"]
        case .G: return ["GibbsFreeEnergy_298K_au"]
        case .Cv: return ["Heatcapacity_Cv_cal_mol_K"]
        }
    }
}

