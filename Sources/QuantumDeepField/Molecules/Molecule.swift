// A molecule: atoms with positions in ångström, and optional property values.

/// One molecule as read from a file: atoms (Z, position in Å) in input order, and its
/// property values. A value type; `Sendable`.
public struct Molecule: Sendable, Equatable {
    /// The molecule's identifier (e.g. "dsgdb9nsd_000001").
    public var id: String
    /// Atomic numbers, in input order.
    public var atomicNumbers: [Int]
    /// Cartesian positions in ångström, in input order.
    public var positions: [SIMD3<Double>]
    /// Property values (e.g. the atomization energy, or HOMO and LUMO); empty when unknown.
    public var properties: [Double]
    /// Formal charges per atom as the file records them (SDF `M  CHG` or the atom block's
    /// charge field, V3000 `CHG=`, PDB columns 79–80, extended XYZ integer charge columns);
    /// empty when the file records none.
    public var formalCharges: [Int]
    /// The total charge the file records (extended XYZ `charge=`, mol2 partial charges
    /// summed, or the sum of `formalCharges`); nil when the file records no charge.
    public var charge: Int?

    /// A molecule; positions in Å, one per atom (traps otherwise). Not validated further
    /// (the readers refuse empty molecules and coincident atoms; `MoleculeCheck` looks at
    /// the chemistry). `formalCharges` is empty or has one value per atom; `charge`
    /// defaults to their sum when any is given.
    public init(id: String, atomicNumbers: [Int], positions: [SIMD3<Double>], properties: [Double] = [],
                formalCharges: [Int] = [], charge: Int? = nil) {
        precondition(atomicNumbers.count == positions.count, "one position per atom")
        precondition(formalCharges.isEmpty || formalCharges.count == atomicNumbers.count, "one formal charge per atom")
        self.id = id
        self.atomicNumbers = atomicNumbers
        self.positions = positions
        self.properties = properties
        self.formalCharges = formalCharges
        self.charge = charge ?? (formalCharges.isEmpty ? nil : formalCharges.reduce(0, +))
    }

    /// M, the number of atoms.
    public var atomCount: Int { atomicNumbers.count }
    /// N_e = Σ Z_a, the number of electrons of the neutral molecule.
    public var electronCount: Int { atomicNumbers.reduce(0, +) }
    /// Element symbols in input order.
    public var symbols: [String] { atomicNumbers.map(Element.symbol) }
    /// A Hill-order formula (C first, then H, then the rest alphabetically).
    public var formula: String {
        var counts = [String: Int]()
        for s in symbols { counts[s, default: 0] += 1 }
        var order = counts.keys.sorted()
        if counts["C"] != nil {
            order.removeAll { $0 == "C" || $0 == "H" }
            order = ["C"] + (counts["H"] != nil ? ["H"] : []) + order
        }
        return order.map { counts[$0]! == 1 ? $0 : "\($0)\(counts[$0]!)" }.joined()
    }
}
