// Which basis functions a molecule has (docs/model.md §3): for each function k its atom,
// its row in the orbital dictionary (the type t(k) that selects ζ and the coefficient
// row) and its q. Built once per molecule; the engine, the chunked large-molecule path
// and the density field all evaluate φ from it.

/// The basis functions of one molecule, in order (atom by atom, as `BasisSet` lists them).
public struct BasisLayout: Sendable, Equatable {
    /// Per function: the 0-based index a(k) of its atom (N_o entries).
    public let atom: [Int32]
    /// Per function: its orbital-dictionary row t(k).
    public let type: [Int32]
    /// Per function: its q (φ = d^(q−1) exp(−ζ d²)).
    public let q: [Int32]

    /// N_o.
    public var count: Int { atom.count }

    /// The layout of `molecule` under `basis`. Throws `QDFError` (the message of
    /// `OrbitalDictionary.refusal`, no file/line) if the dictionary lacks one of its orbitals.
    public init(molecule m: Molecule, basis: BasisSet, dictionary: OrbitalDictionary) throws {
        var atom = [Int32](), type = [Int32](), q = [Int32]()
        for (a, z) in m.atomicNumbers.enumerated() {
            for f in basis.functions(atomicNumber: z) {
                guard let t = dictionary[f.name] else {
                    throw QDFError(dictionary.refusal(m, basis: basis) ?? "molecule '\(m.id)': unknown orbital \(f.name)")
                }
                atom.append(Int32(a)); type.append(Int32(t)); q.append(Int32(f.q))
            }
        }
        self.atom = atom; self.type = type; self.q = q
    }

    /// A layout given function by function (tests; equal counts required).
    package init(atom: [Int32], type: [Int32], q: [Int32]) {
        precondition(atom.count == type.count && type.count == q.count, "one atom, type and q per function")
        self.atom = atom; self.type = type; self.q = q
    }
}
