/// SplitMix64 (G. Steele, D. Lea, C. Flood, OOPSLA 2014): a small, fast, seedable generator
/// whose output depends on nothing but the seed, on every platform. The QM9 data-set
/// splits and the fixed rotations of `MoleculeRotations` draw from it.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits of `next()`.
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
