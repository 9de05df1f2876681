import Foundation

// The orbital dictionary: orbital-type name -> index of its learned exponent ζ and
// coefficient row. Indices are assigned in order of first appearance (training set,
// then validation, then test), so the same files always give the same indices.

/// Orbital-type names ("H1s0", "C2p3", …) and their indices 0 … N_t−1, the rows of
/// `coefficient.weight` and `zeta.weight` (docs/model.md §3, §10). A value type; `Sendable`.
public struct OrbitalDictionary: Sendable, Equatable {
    /// Name → index.
    public private(set) var indices: [String: Int] = [:]
    /// Index → name (the inverse of `indices`; N_t entries).
    public private(set) var names: [String] = []

    /// An empty dictionary.
    public init() {}

    /// A dictionary from an explicit name → index mapping. Throws `QDFError` unless the
    /// indices are exactly 0 ..< mapping.count, each used once.
    public init(_ mapping: [String: Int]) throws {
        let n = mapping.count
        var names = [String](repeating: "", count: n)
        for (k, v) in mapping {
            guard v >= 0, v < n, names[v].isEmpty else {
                throw QDFError("orbital dictionary: indices must be 0..<\(n) without repeats (found \(k): \(v))")
            }
            names[v] = k
        }
        self.indices = mapping
        self.names = names
    }

    /// N_t, the number of orbital types.
    public var count: Int { names.count }
    /// The index of an orbital-type name, or nil if the dictionary lacks it.
    public subscript(name: String) -> Int? { indices[name] }

    /// Adds a name if new (it gets the next index, `count`); returns its index.
    @discardableResult
    public mutating func add(_ name: String) -> Int {
        if let i = indices[name] { return i }
        indices[name] = names.count
        names.append(name)
        return names.count - 1
    }

    /// Adds every orbital of a molecule's atoms, in order (atoms in input order, functions
    /// as `BasisSet.functions(atomicNumber:)` lists them).
    public mutating func add(_ molecule: Molecule, basis: BasisSet) {
        for z in molecule.atomicNumbers { for f in basis.functions(atomicNumber: z) { add(f.name) } }
    }

    /// Symbols of the elements of a molecule with an orbital name not in the dictionary, in
    /// order of atomic number; empty if the dictionary covers the molecule.
    public func unknownElements(_ molecule: Molecule, basis: BasisSet) -> [String] {
        var out = [String]()
        for z in Set(molecule.atomicNumbers).sorted() {
            if basis.functions(atomicNumber: z).contains(where: { indices[$0.name] == nil }) {
                out.append(Element.symbol(z))
            }
        }
        return out
    }

    /// Why a molecule cannot be predicted (elements without learned orbitals), or nil.
    public func refusal(_ m: Molecule, basis: BasisSet) -> String? {
        let unknown = unknownElements(m, basis: basis)
        guard !unknown.isEmpty else { return nil }
        return "molecule '\(m.id)': the model has no learned orbitals for element\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) (it knows \(elements(basis: basis).joined(separator: ", ")))"
    }

    /// Symbols of the elements whose every function under `basis` is in the dictionary, in
    /// order of atomic number (for messages).
    public func elements(basis: BasisSet) -> [String] {
        (1..<Element.symbols.count).filter { z in
            basis.functions(atomicNumber: z).allSatisfy { indices[$0.name] != nil }
        }.map(Element.symbol)
    }

    /// JSON text {"C1s0": 0, ...} in index order: the `orbital_dict` metadata value of a
    /// model file (docs/model.md §10). Names are not JSON-escaped.
    public var json: String {
        "{" + names.enumerated().map { "\"\($0.element)\": \($0.offset)" }.joined(separator: ", ") + "}"
    }

    /// Parses an `orbital_dict` JSON object of name → integer index. Throws `QDFError` if
    /// the text is not a JSON object, a value is not an integer, or the indices are not
    /// exactly 0 ..< count.
    public init(json: String) throws {
        guard let data = json.data(using: .utf8),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw QDFError("orbital dictionary: not a JSON object")
        }
        var m = [String: Int]()
        for (k, v) in obj {
            guard let i = v as? Int else { throw QDFError("orbital dictionary: value of '\(k)' is not an integer") }
            m[k] = i
        }
        try self.init(m)
    }
}
