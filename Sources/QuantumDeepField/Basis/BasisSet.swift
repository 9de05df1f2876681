// The simplified Gaussian-type basis of QDF (spec section 3).
//
// A basis-set name only sets how many radial functions each atom gets: "6-31G"
// gives inner = 6 and outer = 3 + 1 = 4. H and He get `outer` 1s functions; heavier
// atoms get `inner` 1s, then `outer` 2s, then `outer` 2p functions (all radial).

public struct BasisSet: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let inner: Int
    public let outer: Int

    /// Parses a Pople-style name such as "6-31G", "3-21G" or "6-311G".
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

    public var description: String { name }

    /// One basis function of an atom: its orbital-type name and principal quantum number.
    public struct Function: Sendable, Equatable {
        public let name: String
        public let q: Int
    }

    /// The functions centred on an atom of atomic number `z`, in order.
    public func functions(atomicNumber z: Int) -> [Function] {
        let e = Element.symbol(z)
        if z <= 2 {
            return (0..<outer).map { Function(name: "\(e)1s\($0)", q: 1) }
        }
        return (0..<inner).map { Function(name: "\(e)1s\($0)", q: 1) }
            + (0..<outer).map { Function(name: "\(e)2s\($0)", q: 2) }
            + (0..<outer).map { Function(name: "\(e)2p\($0)", q: 2) }
    }

    public func functionCount(atomicNumber z: Int) -> Int { z <= 2 ? outer : inner + 2 * outer }
}
