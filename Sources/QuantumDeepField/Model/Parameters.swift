// All learned parameters of a QDF model in one contiguous Float32 buffer, with a
// named view per tensor (names and shapes as in spec section 10). Gradients and
// Adam's moments use the same layout, so an optimizer step is one loop.

public struct ParameterLayout: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        public var range: Range<Int> { offset..<(offset + count) }
    }

    public private(set) var entries: [Entry] = []
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    mutating func add(_ name: String, _ shape: [Int]) {
        let e = Entry(name: name, shape: shape, offset: totalCount)
        index[name] = entries.count
        entries.append(e)
        totalCount += e.count
    }

    public subscript(name: String) -> Entry? { index[name].map { entries[$0] } }
    public func position(_ name: String) -> Int? { index[name] }

    /// The layout of a model: N_t orbital types, d = dim, H = hidden_HK, P = outputs.
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
    }
}

/// Offsets of each tensor in the flat buffer, resolved once for the hot loops.
public struct ParameterOffsets: Sendable {
    public let coefficient: Int
    public let zeta: Int
    public let functionalWeight: [Int]
    public let functionalBias: [Int]
    public let propertyWeight: Int
    public let propertyBias: Int
    public let densityWeight: Int
    public let densityBias: Int
    public let hkWeight: [Int]
    public let hkBias: [Int]
    public let potentialWeight: Int
    public let potentialBias: Int

    public init(_ layout: ParameterLayout, _ h: Hyperparameters) {
        func o(_ n: String) -> Int { layout[n]!.offset }
        coefficient = o("coefficient.weight")
        zeta = o("zeta.weight")
        functionalWeight = (0..<h.layerFunctional).map { o("W_functional.\($0).weight") }
        functionalBias = (0..<h.layerFunctional).map { o("W_functional.\($0).bias") }
        propertyWeight = o("W_property.weight")
        propertyBias = o("W_property.bias")
        densityWeight = o("W_density.weight")
        densityBias = o("W_density.bias")
        hkWeight = (0..<h.layerHK).map { o("W_HK.\($0).weight") }
        hkBias = (0..<h.layerHK).map { o("W_HK.\($0).bias") }
        potentialWeight = o("W_potential.weight")
        potentialBias = o("W_potential.bias")
    }
}
