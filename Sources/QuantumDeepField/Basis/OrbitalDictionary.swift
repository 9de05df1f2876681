import Foundation

// The orbital dictionary: orbital-type name -> index of its learned exponent ζ and
// coefficient row. Indices are assigned in order of first appearance (training set,
// then validation, then test), so the same files always give the same indices.

public struct OrbitalDictionary: Sendable, Equatable {
    public private(set) var indices: [String: Int] = [:]
    public private(set) var names: [String] = []

    public init() {}

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

    public var count: Int { names.count }
    public subscript(name: String) -> Int? { indices[name] }

    /// Adds a name if new; returns its index.
    @discardableResult
    public mutating func add(_ name: String) -> Int {
        if let i = indices[name] { return i }
        indices[name] = names.count
        names.append(name)
        return names.count - 1
    }

    /// Adds every orbital of a molecule's atoms, in order.
    public mutating func add(_ molecule: Molecule, basis: BasisSet) {
        for z in molecule.atomicNumbers { for f in basis.functions(atomicNumber: z) { add(f.name) } }
    }

    /// Elements of a molecule with an orbital name not in the dictionary.
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

    /// The elements the dictionary covers, for messages.
    public func elements(basis: BasisSet) -> [String] {
        (1..<Element.symbols.count).filter { z in
            basis.functions(atomicNumber: z).allSatisfy { indices[$0.name] != nil }
        }.map(Element.symbol)
    }

    /// JSON text {"C1s0": 0, ...} in index order.
    public var json: String {
        "{" + names.enumerated().map { "\"\($0.element)\": \($0.offset)" }.joined(separator: ", ") + "}"
    }

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
