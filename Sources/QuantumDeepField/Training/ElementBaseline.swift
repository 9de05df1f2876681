import Foundation

// A per-element reference for extensive targets (docs/training.md): E_m ≈ Σ_a b_{Z_a}, the
// b fitted by least squares on the training set. With it the network learns the residual
// E − Σ b: the baseline is added to the model's output, so it is part of every prediction
// and of the model file (metadata `element_baseline`).

/// Per-element reference values: for each atomic number, one value per output.
public struct ElementBaseline: Sendable, Equatable {
    /// Atomic number → P values.
    public let values: [Int: [Double]]
    /// P.
    public let outputs: Int

    public init(values: [Int: [Double]], outputs: Int) {
        self.values = values
        self.outputs = outputs
    }

    /// Σ over the molecule's atoms of their element's values (P values). An element the
    /// fit never saw contributes 0.
    public func offset(_ m: Molecule) -> [Double] {
        var out = [Double](repeating: 0, count: outputs)
        for z in m.atomicNumbers { if let v = values[z] { for q in 0..<outputs { out[q] += v[q] } } }
        return out
    }

    /// Least squares over `molecules`: minimizes Σ_m (E_m − Σ_a b_{Z_a})² per output, with the
    /// counts of each element as features (Float64 normal equations, Cholesky; a relative
    /// ridge of `ridge` only guards against collinear compositions).
    public static func fit(_ molecules: [Molecule], outputs P: Int, ridge: Double = 1e-10) throws -> ElementBaseline {
        let f = try leastSquares(molecules, outputs: P, constant: false, ridge: ridge, what: "the element baseline")
        var values = [Int: [Double]]()
        for (k, z) in f.elements.enumerated() { values[z] = (0..<P).map { f.weights[k * P + $0] } }
        return ElementBaseline(values: values, outputs: P)
    }

    /// The element-count baseline of a property: least squares over `molecules` on the
    /// counts of each element plus a constant (the comparison column of `qdf probe` and of
    /// docs/properties.md). Returns the fitted predictor (P values per molecule).
    public static func fitWithConstant(_ molecules: [Molecule], outputs P: Int,
                                       ridge: Double = 1e-10) throws -> @Sendable (Molecule) -> [Double] {
        let f = try leastSquares(molecules, outputs: P, constant: true, ridge: ridge, what: "the element-count baseline")
        let n = f.elements.count + 1, w = f.weights, features = f.features
        return { m in
            let x = features(m)
            return (0..<P).map { q in (0..<n).reduce(0.0) { $0 + x[$1] * w[$1 * P + q] } }
        }
    }

    /// The normal equations of both fits: features are the counts of each element seen in
    /// `molecules` (sorted by atomic number), then 1 when `constant`; weights row-major
    /// (feature × output).
    private static func leastSquares(_ molecules: [Molecule], outputs P: Int, constant: Bool, ridge: Double, what: String) throws
        -> (elements: [Int], weights: [Double], features: @Sendable (Molecule) -> [Double]) {
        let elements = Array(Set(molecules.flatMap(\.atomicNumbers))).sorted()
        guard !elements.isEmpty else { throw QDFError("no molecules to fit \(what) on") }
        let index = Dictionary(uniqueKeysWithValues: elements.enumerated().map { ($1, $0) })
        let n = elements.count + (constant ? 1 : 0)
        let features: @Sendable (Molecule) -> [Double] = { m in
            var x = [Double](repeating: 0, count: n)
            for z in m.atomicNumbers { if let k = index[z] { x[k] += 1 } }
            if constant { x[n - 1] = 1 }
            return x
        }
        var ata = [Double](repeating: 0, count: n * n), aty = [Double](repeating: 0, count: n * P)
        for m in molecules {
            guard m.properties.count == P else {
                throw QDFError("molecule '\(m.id)' has \(m.properties.count) property values, expected \(P)")
            }
            let x = features(m)
            for a in 0..<n where x[a] != 0 {
                for b in 0..<n { ata[a * n + b] += x[a] * x[b] }
                for q in 0..<P { aty[a * P + q] += x[a] * m.properties[q] }
            }
        }
        for a in 0..<n { ata[a * n + a] *= 1 + ridge }
        return (elements, try ReadoutRefit.choleskySolve(ata, n: n, rhs: aty, columns: P), features)
    }

    /// The metadata form: `{"1": [v, …], "6": [v, …]}` with values printed round-trip exact.
    public var json: String {
        "{" + values.keys.sorted().map { z in
            "\"\(z)\": [" + values[z]!.map { "\($0)" }.joined(separator: ", ") + "]"
        }.joined(separator: ", ") + "}"
    }

    /// Parses the metadata form (numbers read with Swift's exact decimal conversion); every
    /// entry must have `outputs` finite values.
    public init(json: String, outputs: Int) throws {
        func fail(_ why: String) -> QDFError { QDFError("metadata 'element_baseline': \(why)") }
        var text = Substring(json.trimmingCharacters(in: .whitespacesAndNewlines))
        guard text.first == "{", text.last == "}" else { throw fail("expected a JSON object") }
        text = text.dropFirst().dropLast()
        var values = [Int: [Double]]()
        while let open = text.firstIndex(of: "[") {
            guard let close = text[open...].firstIndex(of: "]") else { throw fail("unclosed list") }
            let key = text[..<open].trimmingCharacters(in: CharacterSet(charactersIn: " ,:\"\n\t"))
            guard let z = Int(key), z > 0, z < Element.symbols.count else { throw fail("'\(key)' is not an atomic number") }
            let list = text[text.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard list.count == outputs else { throw fail("entry '\(key)' has \(list.count) values, expected \(outputs)") }
            values[z] = try list.map {
                guard let v = Double($0), v.isFinite else { throw fail("entry '\(key)': '\($0)' is not a finite number") }
                return v
            }
            text = text[text.index(after: close)...]
        }
        guard text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw fail("unexpected text after the last entry") }
        self.init(values: values, outputs: outputs)
    }
}
