// The simplified Gaussian-type basis of QDF (docs/model.md §3).
//
// A basis-set name only sets how many radial functions each atom gets: "6-31G"
// gives inner = 6 and outer = 3 + 1 = 4. H and He get `outer` 1s functions; heavier
// atoms get `inner` 1s, then `outer` 2s, then `outer` 2p functions (all radial).

/// A Pople-style basis-set name reduced to its two function counts (docs/model.md §3).
/// An immutable value; `Sendable`.
public struct BasisSet: Sendable, Equatable, CustomStringConvertible {
    /// The name as given to `init(_:)` (untrimmed), e.g. "6-31G".
    public let name: String
    /// The first digit of the name: the number of 1s functions of an atom with Z ≥ 3.
    public let inner: Int
    /// The sum of the remaining digits: the number of 1s functions of H and He, and of
    /// 2s and of 2p functions of an atom with Z ≥ 3.
    public let outer: Int

    /// Parses a Pople-style name such as "6-31G", "3-21G" or "6-311G" (6-31G → inner 6,
    /// outer 4). Throws `QDFError` (no file/line) unless the name ends in G or g and has at
    /// least two digits (dashes ignored) with inner > 0 and outer > 0.
    public init(_ name: String) throws {
        var s = name.trimmingCharacters(in: .whitespaces)
        guard s.hasSuffix("G") || s.hasSuffix("g") else {
            throw QDFError("basis set '\(name)': expected a Pople-style name ending in G, such as 6-31G or 3-21G")
        }
        s.removeLast()
        let digits = s.replacingOccurrences(of: "-", with: "")
        guard digits.count >= 2, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw QDFError("basis set '\(name)': expected digits and dashes before G, such as 6-31G or 3-21G")
        }
        let d = digits.map { Int(String($0))! }
        inner = d[0]
        outer = d.dropFirst().reduce(0, +)
        guard inner > 0, outer > 0 else { throw QDFError("basis set '\(name)': no functions") }
        self.name = name
    }

    /// The basis-set name.
    public var description: String { name }

    /// One basis function of an atom: its orbital-type name and principal quantum number.
    public struct Function: Sendable, Equatable {
        /// The orbital-type name, element symbol + shell + index, e.g. "C2p3"; the key of
        /// `OrbitalDictionary`.
        public let name: String
        /// The principal number q (1 for 1s, 2 for 2s and 2p): φ = d^(q−1) exp(−ζ d²).
        public let q: Int
    }

    /// The functions centred on an atom of atomic number `z`, in order: for Z ≤ 2 `outer`
    /// 1s; otherwise `inner` 1s, then `outer` 2s, then `outer` 2p (docs/model.md §3).
    public func functions(atomicNumber z: Int) -> [Function] {
        let e = Element.symbol(z)
        if z <= 2 {
            return (0..<outer).map { Function(name: "\(e)1s\($0)", q: 1) }
        }
        return (0..<inner).map { Function(name: "\(e)1s\($0)", q: 1) }
            + (0..<outer).map { Function(name: "\(e)2s\($0)", q: 2) }
            + (0..<outer).map { Function(name: "\(e)2p\($0)", q: 2) }
    }

    /// The number of functions on an atom of atomic number `z` (`functions(atomicNumber:).count`):
    /// `outer` for Z ≤ 2, `inner + 2·outer` otherwise.
    public func functionCount(atomicNumber z: Int) -> Int { z <= 2 ? outer : inner + 2 * outer }
}
