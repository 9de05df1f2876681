// All learned parameters of a QDF model in one contiguous Float32 buffer, with a
// named view per tensor (names and shapes as in docs/model.md §10). Gradients and
// Adam's moments use the same layout, so an optimizer step is one loop.

/// The names, shapes and offsets of a model's tensors in its flat parameter buffer, in
/// the order of docs/model.md §10. An immutable value once built; `Sendable`.
public struct ParameterLayout: Sendable, Equatable {
    /// One tensor of the layout.
    public struct Entry: Sendable, Equatable {
        /// The state_dict name, e.g. "W_functional.0.weight".
        public let name: String
        /// The shape, weights as [out, in] (§10).
        public let shape: [Int]
        /// The index of its first value in the flat buffer.
        public let offset: Int
        /// The number of values.
        public var count: Int { shape.reduce(1, *) }
        /// Its values' indices in the flat buffer.
        public var range: Range<Int> { offset..<(offset + count) }
    }

    /// The tensors in buffer order.
    public private(set) var entries: [Entry] = []
    /// The length of the flat buffer (parameters, gradients and each Adam moment).
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    mutating func add(_ name: String, _ shape: [Int]) {
        let e = Entry(name: name, shape: shape, offset: totalCount)
        index[name] = entries.count
        entries.append(e)
        totalCount += e.count
    }

    /// The entry named `name`, or nil.
    public subscript(name: String) -> Entry? { index[name].map { entries[$0] } }
    /// The index of the entry named `name` in `entries`, or nil.
    public func position(_ name: String) -> Int? { index[name] }

    /// The layout of a model: N_t orbital types, d = dim, H = hidden_HK, P = outputs,
    /// tensors in the §10 order (coefficient, zeta, W_functional.*, W_property, W_density,
    /// W_HK.*, W_potential).
    public init(orbitalTypes nt: Int, hyper h: Hyperparameters) {
        add("coefficient.weight", [nt, h.dim])
        add("zeta.weight", [nt, 1])
        for l in 0..<h.layerFunctional {
            add("W_functional.\(l).weight", [h.dim, h.dim])
            add("W_functional.\(l).bias", [h.dim])
        }
        add("W_property.weight", [h.outputs, h.dim])
        add("W_property.bias", [h.outputs])
        add("W_density.weight", [h.hiddenHK, 1])
        add("W_density.bias", [h.hiddenHK])
        for l in 0..<h.layerHK {
            add("W_HK.\(l).weight", [h.hiddenHK, h.hiddenHK])
            add("W_HK.\(l).bias", [h.hiddenHK])
        }
        add("W_potential.weight", [1, h.hiddenHK])
        add("W_potential.bias", [1])
        // The orbital environment's tensors (§18) follow, when it is on.
        for (name, shape) in h.environment?.tensors(orbitalTypes: nt, dim: h.dim) ?? [] { add(name, shape) }
        // Then the potential input's weight (§19), when it is on.
        if h.potentialFeatures > 0 { add("W_functional_potential.weight", [h.dim, h.potentialFeatures]) }
    }
}

/// Offsets of each tensor in the flat buffer, resolved once for the hot loops.
/// Every value is an index into the flat parameter (or gradient) buffer; shapes as in §10.
package struct ParameterOffsets: Sendable {
    /// `coefficient.weight`, N_t × dim.
    package let coefficient: Int
    /// `zeta.weight`, N_t × 1 (ζ in Å⁻²).
    package let zeta: Int
    /// `W_functional.{l}.weight`, dim × dim, for l = 0 … L_f − 1.
    package let functionalWeight: [Int]
    /// `W_functional.{l}.bias`, dim, for l = 0 … L_f − 1.
    package let functionalBias: [Int]
    /// `W_property.weight`, P × dim.
    package let propertyWeight: Int
    /// `W_property.bias`, P.
    package let propertyBias: Int
    /// `W_density.weight`, H × 1.
    package let densityWeight: Int
    /// `W_density.bias`, H.
    package let densityBias: Int
    /// `W_HK.{l}.weight`, H × H, for l = 0 … L_HK − 1.
    package let hkWeight: [Int]
    /// `W_HK.{l}.bias`, H, for l = 0 … L_HK − 1.
    package let hkBias: [Int]
    /// `W_potential.weight`, 1 × H.
    package let potentialWeight: Int
    /// `W_potential.bias`, 1.
    package let potentialBias: Int
    /// The orbital environment's tensors (§18), or nil when it is off.
    package let environment: EnvironmentOffsets?
    /// `W_functional_potential.weight`, dim × K_v (§19), or nil when the potential input is off.
    package let potentialInput: Int?

    /// Resolves the offsets of `layout`, which must have been built from `h` (traps on a
    /// missing tensor).
    package init(_ layout: ParameterLayout, _ h: Hyperparameters) {
        func o(_ n: String) -> Int { layout[n]!.offset }
        // A linear layer's weight and bias; a stack's per layer.
        func linear(_ name: String) -> (Int, Int) { (o("\(name).weight"), o("\(name).bias")) }
        func stack(_ name: String, _ n: Int) -> ([Int], [Int]) {
            let layers = (0..<n).map { linear("\(name).\($0)") }
            return (layers.map(\.0), layers.map(\.1))
        }
        coefficient = o("coefficient.weight")
        zeta = o("zeta.weight")
        (functionalWeight, functionalBias) = stack("W_functional", h.layerFunctional)
        (propertyWeight, propertyBias) = linear("W_property")
        (densityWeight, densityBias) = linear("W_density")
        (hkWeight, hkBias) = stack("W_HK", h.layerHK)
        (potentialWeight, potentialBias) = linear("W_potential")
        environment = h.environment.map { EnvironmentOffsets(layout, $0) }
        potentialInput = h.potentialFeatures > 0 ? o("W_functional_potential.weight") : nil
    }
}
