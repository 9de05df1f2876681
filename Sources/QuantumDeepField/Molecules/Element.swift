// Chemical elements: symbols and atomic numbers for the whole periodic table.

/// Element symbols ↔ atomic numbers, Z = 1 … 118.
public enum Element {
    /// Symbols indexed by atomic number (index 0 is unused).
    public static let symbols: [String] = [
        "",
        "H", "He",
        "Li", "Be", "B", "C", "N", "O", "F", "Ne",
        "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
        "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
        "Ga", "Ge", "As", "Se", "Br", "Kr",
        "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
        "In", "Sn", "Sb", "Te", "I", "Xe",
        "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
        "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
        "Tl", "Pb", "Bi", "Po", "At", "Rn",
        "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
        "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
        "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
    ]

    private static let numbers: [String: Int] = {
        var d = [String: Int]()
        for (z, s) in symbols.enumerated() where z > 0 { d[s.lowercased()] = z }
        return d
    }()

    /// The atomic number of a symbol (case-insensitive: "C", "c", "CL", "Cl"), or nil.
    public static func atomicNumber(_ symbol: some StringProtocol) -> Int? {
        // Fast path for the organic elements (no lowercasing, no hashing).
        if symbol.utf8.count == 1 {
            switch symbol.utf8.first! {
            case UInt8(ascii: "H"): return 1
            case UInt8(ascii: "C"): return 6
            case UInt8(ascii: "N"): return 7
            case UInt8(ascii: "O"): return 8
            case UInt8(ascii: "F"): return 9
            default: break
            }
        }
        return numbers[symbol.lowercased()]
    }

    /// The symbol of an atomic number; "Z<n>" outside the table.
    public static func symbol(_ z: Int) -> String {
        z > 0 && z < symbols.count ? symbols[z] : "Z\(z)"
    }
}
